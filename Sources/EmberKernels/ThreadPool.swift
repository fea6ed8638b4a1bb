import Foundation
import Synchronization

/// A persistent pool of worker threads for data-parallel loops.
///
/// Threads start once. A call publishes the loop body and bumps a generation counter; workers
/// spin briefly on the counter (a token's many matrix products arrive microseconds apart) and
/// only then sleep on a condition, so a call costs a few microseconds and allocates nothing.
/// The calling thread takes part as thread 0. Workers stop when the pool is released.
///
/// Call `parallelFor` from one thread at a time (the owner of a model's inference state).
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    private let shared: Shared
    /// Each thread's workspace, allocated on its first use and kept (see `workspace(_:)`); only
    /// pools whose kernels ask for one pay for it.
    private let workspaces: UnsafeMutablePointer<UnsafeMutableRawPointer?>

    /// Bytes of each thread's workspace: kernels keep per-thread buffers there instead of
    /// allocating on each call (an allocation this large is a fresh mapping whose pages the kernel
    /// zeroes every time).
    public static let workspaceBytes = 192 << 10

    /// Starts `threadCount - 1` workers; the caller of `parallelFor` is the remaining one.
    public init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        shared = Shared(threadCount: self.threadCount)
        workspaces = .allocate(capacity: self.threadCount)
        workspaces.initialize(repeating: nil, count: self.threadCount)
        for index in 1..<self.threadCount {
            let shared = self.shared
            let thread = Thread { shared.workerLoop(index: index) }
            thread.name = "ember.pool.\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit {
        shared.stop()
        for thread in 0..<threadCount { workspaces[thread]?.deallocate() }
        workspaces.deallocate()
    }

    /// The workspace of thread `thread` (the second argument of a `parallelFor` body), for that
    /// thread's use during the call. Each thread only reads and writes its own slot.
    public func workspace(_ thread: Int) -> UnsafeMutableRawPointer {
        precondition(thread >= 0 && thread < threadCount)
        if let workspace = workspaces[thread] { return workspace }
        let workspace = UnsafeMutableRawPointer.allocate(byteCount: Self.workspaceBytes, alignment: 64)
        workspaces[thread] = workspace
        return workspace
    }

    /// Threads that take part in the next calls (1…threadCount): a scheduler uses fewer threads
    /// when more would add power but no speed. The others skip the work (they still wake briefly
    /// to check in, then sleep).
    public var activeThreadCount: Int {
        get { shared.active.load(ordering: .relaxed) }
        set { shared.active.store(min(threadCount, max(1, newValue)), ordering: .relaxed) }
    }

    /// Runs `body(range, thread)` over `0..<count` split into one contiguous range per thread;
    /// returns when every range is done.
    public func parallelFor(_ count: Int, _ body: (_ range: Range<Int>, _ thread: Int) -> Void) {
        guard count > 0 else { return }
        if threadCount == 1 || count == 1 || activeThreadCount == 1 {
            body(0..<count, 0)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            shared.run(count: count, body: escapable)
        }
    }

    /// Runs `body(range, thread)` over `0..<count` in chunks of at most `grain` items that the
    /// threads claim one after another until none is left; returns when every chunk is done.
    ///
    /// For loops whose items cost the same but whose threads may not run alike: a thread that is
    /// descheduled, runs on a slower core (a phone's efficiency cores) or waits longer for memory
    /// leaves its share to the others instead of holding up the call. `body` is called once per
    /// chunk, so its per-call work should be small beside a chunk's.
    public func parallelFor(_ count: Int, grain: Int, _ body: (_ range: Range<Int>, _ thread: Int) -> Void) {
        guard count > 0 else { return }
        let grain = max(1, grain)
        let threads = min(activeThreadCount, threadCount)
        if threads == 1 || count <= grain {
            for start in stride(from: 0, to: count, by: grain) { body(start..<min(count, start + grain), 0) }
            return
        }
        shared.cursor.store(0, ordering: .relaxed)
        let shared = self.shared
        withoutActuallyEscaping(body) { escapable in
            shared.run(count: threads) { _, thread in
                while true {
                    let start = shared.cursor.add(grain, ordering: .relaxed).oldValue
                    guard start < count else { return }
                    escapable(start..<min(count, start + grain), thread)
                }
            }
        }
    }

    /// The part of `0..<count` that thread `index` of `threads` runs.
    @inline(__always)
    static func range(of index: Int, threads: Int, count: Int) -> Range<Int> {
        let base = count / threads
        let extra = count % threads
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    /// State the workers share with the pool.
    ///
    /// `@unchecked Sendable`: `body` and `count` are written by the caller before the generation
    /// counter is bumped (sequentially consistent) and read by workers only after they observe the
    /// new generation; the caller waits for `pending` to reach zero before clearing them, so the
    /// body never outlives the call that lent it.
    private final class Shared: @unchecked Sendable {
        let threadCount: Int
        let generation = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        let sleepers = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        let active: Atomic<Int>
        /// The next unclaimed item of `parallelFor(_:grain:_:)`.
        let cursor = Atomic<Int>(0)
        let condition = NSCondition()
        var body: ((Range<Int>, Int) -> Void)?
        var count = 0
        let spinIterations = 100_000

        init(threadCount: Int) {
            self.threadCount = threadCount
            active = Atomic(threadCount)
        }

        func run(count: Int, body: @escaping (Range<Int>, Int) -> Void) {
            self.body = body
            self.count = count
            pending.store(threadCount - 1, ordering: .sequentiallyConsistent)
            wake()
            body(ThreadPool.range(of: 0, threads: active.load(ordering: .relaxed), count: count), 0)
            while pending.load(ordering: .acquiring) > 0 {}
            self.body = nil
        }

        /// Bumps the generation and wakes sleeping workers. Dekker-style: the generation store and
        /// the sleeper load here, and the sleeper store and generation load in `workerLoop`, are all
        /// sequentially consistent, so a worker either sees the new generation or is woken.
        private func wake() {
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
        }

        func stop() {
            stopping.store(true, ordering: .sequentiallyConsistent)
            wake()
        }

        func workerLoop(index: Int) {
            var seen = 0
            while true {
                var current = generation.load(ordering: .acquiring)
                var spins = 0
                while current == seen, spins < spinIterations {
                    spins += 1
                    current = generation.load(ordering: .acquiring)
                }
                if current == seen {
                    condition.lock()
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        condition.wait()
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    condition.unlock()
                    current = generation.load(ordering: .acquiring)
                }
                seen = current
                if stopping.load(ordering: .acquiring) { return }
                let threads = active.load(ordering: .relaxed)
                if let body, index < threads {
                    body(ThreadPool.range(of: index, threads: threads, count: count), index)
                }
                pending.subtract(1, ordering: .releasing)
            }
        }
    }
}
