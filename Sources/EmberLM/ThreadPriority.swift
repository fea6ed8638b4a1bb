import CThreadPriority
#if canImport(Darwin)
import Darwin
#endif

/// How urgent the work of a step is: an interactive reply someone waits for, or background work
/// (summaries) that should yield the CPU to the app.
public enum WorkPriority: String, Sendable, Equatable, CaseIterable {
    case interactive
    case background
}

/// Gives the calling thread the scheduling priority of a class of work. A `SessionPool` calls it
/// on each of its threads (and the thread driving them) when the priority of its steps changes.
/// Injected: the engine an app embeds uses `SystemThreadPriority`; the simulator uses none, so
/// simulating never touches the host's scheduler.
public protocol ThreadPrioritySetting: Sendable {
    func apply(_ priority: WorkPriority)
}

/// The operating system's thread priorities. Apple platforms: QoS classes (`userInitiated` for
/// interactive work, `utility` for background) via `pthread_set_qos_class_self_np`. Linux and
/// Android: nice 0 and 10 — Android's `THREAD_PRIORITY_DEFAULT` and `THREAD_PRIORITY_BACKGROUND` —
/// via `setpriority` on the thread's id. Best effort: a system that refuses (raising priority
/// again needs `RLIMIT_NICE` room on desktop Linux) leaves the thread as it is.
public struct SystemThreadPriority: ThreadPrioritySetting {
    public init() {}

    /// The nice value of `priority` on Linux and Android.
    public static func niceValue(_ priority: WorkPriority) -> Int32 { priority == .interactive ? 0 : 10 }

    public func apply(_ priority: WorkPriority) {
        #if canImport(Darwin)
        _ = pthread_set_qos_class_self_np(priority == .interactive ? QOS_CLASS_USER_INITIATED : QOS_CLASS_UTILITY, 0)
        #else
        _ = thread_priority_set_current_nice(Self.niceValue(priority))
        #endif
    }
}
