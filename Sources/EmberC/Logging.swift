import CEmberABI
import Synchronization

/// The process-wide log callback a port sets (`ember_set_log_callback`): the C layer's lines
/// (engines opened and their plans, requests finished, every failed call).
enum Log {
    /// `@unchecked Sendable`: a C function pointer and the caller's context, which the header
    /// requires to be usable from any thread.
    private struct Sink: @unchecked Sendable {
        var callback: ember_log_callback
        var minimum: ember_log_level
        var userData: UnsafeMutableRawPointer?
    }

    private static let sink = Mutex<Sink?>(nil)

    static func set(_ callback: ember_log_callback?, minimum: ember_log_level, userData: UnsafeMutableRawPointer?) {
        sink.withLock { $0 = callback.map { Sink(callback: $0, minimum: minimum, userData: userData) } }
    }

    /// Passes `message` to the callback when one is set and `level` is at least its minimum.
    static func write(_ level: ember_log_level, _ message: @autoclosure () -> String) {
        guard let sink = sink.withLock({ $0 }), level.rawValue >= sink.minimum.rawValue else { return }
        message().withCString { sink.callback(level, $0, sink.userData) }
    }
}

extension ember_log_level {
    static let debug = EMBER_LOG_DEBUG
    static let info = EMBER_LOG_INFO
    static let warning = EMBER_LOG_WARNING
    static let error = EMBER_LOG_ERROR
}

@_cdecl("ember_set_log_callback")
public func ember_set_log_callback(_ callback: ember_log_callback?, _ minimumLevel: ember_log_level,
                                   _ userData: UnsafeMutableRawPointer?) -> ember_status {
    guard (EMBER_LOG_DEBUG.rawValue...EMBER_LOG_ERROR.rawValue).contains(minimumLevel.rawValue) else {
        return failure(EMBER_STATUS_INVALID_ARGUMENT, "the log level must be 0 (debug) to 3 (error), not \(minimumLevel.rawValue)")
    }
    Log.set(callback, minimum: minimumLevel, userData: userData)
    return EMBER_STATUS_OK
}
