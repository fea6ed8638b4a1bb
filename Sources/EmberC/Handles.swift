import CEmberABI
import Synchronization

/// The objects behind the C handles. A handle is not an address but a number (a multiple of 16,
/// never reused), so a NULL, released or forged handle is found in the table or refused, never
/// dereferenced.
final class HandleTable: Sendable {
    static let shared = HandleTable()

    private let entries = Mutex<[UInt: any AnyObject & Sendable]>([:])
    private let next = Atomic<UInt>(1)

    /// A new handle for `object`.
    func insert(_ object: any AnyObject & Sendable) -> OpaquePointer {
        let number = next.wrappingAdd(1, ordering: .relaxed).oldValue
        let key = number << 4
        entries.withLock { $0[key] = object }
        return OpaquePointer(bitPattern: key)!
    }

    /// The object of `handle` if it is live and of type `T`, else an invalid-argument error naming `what`.
    func lookup<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type, _ what: String) throws(CallError) -> T {
        guard let handle else { throw .invalid("the \(what) handle is NULL") }
        let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
        guard let object = entries.withLock({ $0[key] }) as? T else {
            throw .invalid("\(handle) is not an open \(what) handle (released already, or another kind of handle)")
        }
        return object
    }

    /// Removes `handle` and returns its object, as `lookup` does.
    func remove<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type, _ what: String) throws(CallError) -> T {
        let object = try lookup(handle, type, what)
        let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle!)))
        entries.withLock { _ = $0.removeValue(forKey: key) }
        return object
    }

    /// Live handles (for tests of leaks).
    var count: Int { entries.withLock { $0.count } }
}

/// Reads a params struct the caller filled: `struct_size` must be this library's size of it
/// (the first version of each struct; later versions will accept the sizes of earlier ones).
func readParams<T>(_ pointer: UnsafePointer<T>?, _ what: String) throws(CallError) -> T {
    guard let pointer else { throw .invalid("the \(what) pointer is NULL") }
    // struct_size is the first field of every params struct.
    let declared = UnsafeRawPointer(pointer).loadUnaligned(as: Int.self)
    guard declared == MemoryLayout<T>.size else {
        throw .invalid("\(what).struct_size is \(declared) but this library (ABI \(EMBER_ABI_VERSION)) expects \(MemoryLayout<T>.size); fill it with the matching default-params function")
    }
    return pointer.pointee
}

/// Checks an output struct's `struct_size` as `readParams` does.
func checkOutput<T>(_ pointer: UnsafeMutablePointer<T>?, _ what: String) throws(CallError) -> UnsafeMutablePointer<T> {
    guard let pointer else { throw .invalid("the \(what) pointer is NULL") }
    let declared = UnsafeRawPointer(pointer).loadUnaligned(as: Int.self)
    guard declared == MemoryLayout<T>.size else {
        throw .invalid("\(what).struct_size is \(declared) but this library (ABI \(EMBER_ABI_VERSION)) expects \(MemoryLayout<T>.size)")
    }
    return pointer
}
