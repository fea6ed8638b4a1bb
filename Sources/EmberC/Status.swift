import CEmberABI
import Ember
import EmberNotes
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Statuses, the per-thread error message and C strings: the vocabulary of every other file here.

/// The calling thread's last error message, a `strdup`ed C string freed when replaced or when the thread ends.
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { pointer in free(pointer) }
    return key
}()

/// Records `message` as the calling thread's last error, logs it, and returns `status`.
func failure(_ status: ember_status, _ message: String) -> ember_status {
    free(pthread_getspecific(lastErrorKey))
    pthread_setspecific(lastErrorKey, strdup(message))
    Log.write(.warning, "\(statusName(status)): \(message)")
    return status
}

/// A Swift error as a status and its message.
func failure(_ error: any Error) -> ember_status {
    let (status, message) = statusAndMessage(error)
    return failure(status, message)
}

func statusAndMessage(_ error: any Error) -> (ember_status, String) {
    switch error {
    case let error as CallError:
        return (error.status, error.message)
    case let error as EngineError:
        let status: ember_status = switch error.code {
        case .invalidConfiguration: EMBER_STATUS_INVALID_ARGUMENT
        case .unreadableModel: EMBER_STATUS_UNSUPPORTED_MODEL
        case .memoryBudget: EMBER_STATUS_MEMORY_BUDGET
        case .busy: EMBER_STATUS_BUSY
        case .cancelled: EMBER_STATUS_CANCELLED
        case .contextFull: EMBER_STATUS_CONTEXT_FULL
        case .generation: EMBER_STATUS_INTERNAL
        }
        return (status, error.message)
    case let error as NotesError:
        let status: ember_status = switch error.code {
        case .noSuchNote, .noDatabase: EMBER_STATUS_NOT_FOUND
        case .tooLarge, .invalidUTF8, .invalidInput, .noteInTrash, .noteNotInTrash, .noSuchVersion: EMBER_STATUS_INVALID_ARGUMENT
        case .fileSystem: EMBER_STATUS_IO
        default: EMBER_STATUS_DATABASE
        }
        return (status, error.message)
    case let error as LanguageModelError:
        return (error.kind == .cancelled ? EMBER_STATUS_CANCELLED : error.kind == .contextFull ? EMBER_STATUS_CONTEXT_FULL : EMBER_STATUS_INTERNAL,
                error.message)
    default:
        return (EMBER_STATUS_INTERNAL, "\(error)")
    }
}

/// A failure found by the C layer itself (a bad argument, a missing file).
struct CallError: Error {
    let status: ember_status
    let message: String
    init(_ status: ember_status, _ message: String) {
        self.status = status
        self.message = message
    }
    static func invalid(_ message: String) -> CallError { CallError(EMBER_STATUS_INVALID_ARGUMENT, message) }
}

/// Runs `body`, turning a thrown error into its status (and the thread's message).
func call(_ body: () throws -> Void) -> ember_status {
    do {
        try body()
        return EMBER_STATUS_OK
    } catch {
        return failure(error)
    }
}

func statusName(_ status: ember_status) -> String {
    switch status {
    case EMBER_STATUS_OK: "ok"
    case EMBER_STATUS_INVALID_ARGUMENT: "invalid_argument"
    case EMBER_STATUS_NOT_FOUND: "not_found"
    case EMBER_STATUS_UNSUPPORTED_MODEL: "unsupported_model"
    case EMBER_STATUS_MEMORY_BUDGET: "memory_budget"
    case EMBER_STATUS_CONTEXT_FULL: "context_full"
    case EMBER_STATUS_CANCELLED: "cancelled"
    case EMBER_STATUS_MEMORY_PRESSURE: "memory_pressure"
    case EMBER_STATUS_IO: "io"
    case EMBER_STATUS_DATABASE: "database"
    case EMBER_STATUS_INTERNAL: "internal"
    case EMBER_STATUS_TIMEOUT: "timeout"
    case EMBER_STATUS_BUSY: "busy"
    default: "unknown"
    }
}

/// Constant C strings of the status names (never freed).
/// `nonisolated(unsafe)`: written once at initialization, then only read.
nonisolated(unsafe) private let statusNames: [UnsafeMutablePointer<CChar>?] = (0...13).map { strdup(statusName(ember_status(rawValue: $0))) }

/// A C string argument as Swift text: NULL, or invalid UTF-8, is an invalid argument naming `what`.
func text(_ pointer: UnsafePointer<CChar>?, _ what: String) throws(CallError) -> String {
    guard let pointer else { throw .invalid("\(what) is NULL") }
    guard let value = String(validatingCString: pointer) else { throw .invalid("\(what) is not valid UTF-8") }
    return value
}

/// An optional C string argument (NULL is nil).
func optionalText(_ pointer: UnsafePointer<CChar>?, _ what: String) throws(CallError) -> String? {
    guard let pointer else { return nil }
    return try text(pointer, what)
}

/// `value` copied into memory the caller releases with `ember_free`.
func allocatedCString(_ value: String) throws(CallError) -> UnsafeMutablePointer<CChar> {
    guard let copy = strdup(value) else { throw CallError(EMBER_STATUS_INTERNAL, "out of memory for \(value.utf8.count) bytes") }
    return copy
}

/// Nanoseconds for a count of seconds (0 for NaN or negative; saturating).
func nanoseconds(_ seconds: Double) -> UInt64 {
    guard seconds.isFinite, seconds > 0 else { return 0 }
    return seconds * 1e9 >= 1.8e19 ? UInt64.max : UInt64(seconds * 1e9)
}

/// A count for a C field (clamped to its range).
func count32(_ value: Int) -> UInt32 { UInt32(clamping: value) }

// MARK: - exported

@_cdecl("ember_last_error")
public func ember_last_error() -> UnsafePointer<CChar> {
    if let message = pthread_getspecific(lastErrorKey) { return UnsafePointer(message.assumingMemoryBound(to: CChar.self)) }
    return UnsafePointer(emptyString)
}

nonisolated(unsafe) private let emptyString: UnsafeMutablePointer<CChar> = strdup("")!

@_cdecl("ember_status_name")
public func ember_status_name(_ status: ember_status) -> UnsafePointer<CChar> {
    let index = Int(status.rawValue)
    if index < 13, let name = statusNames[index] { return UnsafePointer(name) }
    return UnsafePointer(statusNames[13] ?? emptyString)
}

@_cdecl("ember_abi_version")
public func ember_abi_version() -> UInt32 { UInt32(EMBER_ABI_VERSION) }

@_cdecl("ember_free")
public func ember_free(_ pointer: UnsafeMutableRawPointer?) { free(pointer) }
