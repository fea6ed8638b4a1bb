import EmberCore

/// How the KV cache stores keys and values: half precision as llama.cpp's default, or quantized
/// in 32-element blocks (Q8_0 halves the cache, Q4_0 quarters it) for long contexts in tight budgets.
public enum KeyValueType: String, Sendable, CaseIterable, Codable {
    case f16
    case q8_0
    case q4_0

    public var tensorType: TensorType {
        switch self {
        case .f16: .f16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        }
    }

    /// Bytes of a row of `width` elements.
    public func rowBytes(_ width: Int) -> Int { tensorType.byteCount(elements: width) ?? width * 2 }
}

/// Keys and values of every layer for up to `capacity` positions, in `type`.
///
/// Layout per layer: `capacity` rows of `keyWidth` (keys) or `valueWidth` (values) elements, the
/// row of position p at byte offset p × row bytes. Owned by one inference session; not shared.
public final class KeyValueCache {
    public let layerCount: Int
    public let capacity: Int
    public let keyWidth: Int
    public let valueWidth: Int
    public let type: KeyValueType
    /// Number of positions filled.
    public internal(set) var count: Int = 0
    let keyRowBytes: Int
    let valueRowBytes: Int
    let keyStorage: UnsafeMutableRawPointer
    let valueStorage: UnsafeMutableRawPointer

    public init(layerCount: Int, capacity: Int, keyWidth: Int, valueWidth: Int, type: KeyValueType = .f16) {
        self.layerCount = layerCount
        self.capacity = capacity
        self.keyWidth = keyWidth
        self.valueWidth = valueWidth
        self.type = type
        keyRowBytes = type.rowBytes(keyWidth)
        valueRowBytes = type.rowBytes(valueWidth)
        keyStorage = .allocate(byteCount: max(1, layerCount * capacity * keyRowBytes), alignment: 64)
        valueStorage = .allocate(byteCount: max(1, layerCount * capacity * valueRowBytes), alignment: 64)
    }

    deinit {
        keyStorage.deallocate()
        valueStorage.deallocate()
    }

    /// Bytes this cache holds.
    public var byteCount: Int { layerCount * capacity * (keyRowBytes + valueRowBytes) }

    /// Bytes a cache of these dimensions needs.
    /// `Int.max` when the product overflows (a plan then fits no budget).
    public static func byteCount(layerCount: Int, capacity: Int, keyWidth: Int, valueWidth: Int, type: KeyValueType = .f16) -> Int {
        let (positions, overflow1) = layerCount.multipliedReportingOverflow(by: capacity)
        let (row, overflow2) = type.rowBytes(keyWidth).addingReportingOverflow(type.rowBytes(valueWidth))
        let (bytes, overflow3) = positions.multipliedReportingOverflow(by: row)
        return overflow1 || overflow2 || overflow3 ? .max : bytes
    }

    /// The key row of `position` (raw bytes of `type`).
    @inline(__always)
    func keyBytes(layer: Int, position: Int) -> UnsafeMutableRawPointer {
        keyStorage + (layer * capacity + position) * keyRowBytes
    }

    @inline(__always)
    func valueBytes(layer: Int, position: Int) -> UnsafeMutableRawPointer {
        valueStorage + (layer * capacity + position) * valueRowBytes
    }

    /// The key row as halves (only for `.f16`).
    @inline(__always)
    func keyRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float16> {
        keyBytes(layer: layer, position: position).assumingMemoryBound(to: Float16.self)
    }

    @inline(__always)
    func valueRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float16> {
        valueBytes(layer: layer, position: position).assumingMemoryBound(to: Float16.self)
    }

    /// Forgets every position.
    public func clear() { count = 0 }

    /// Forgets positions from `position` on.
    public func truncate(to position: Int) {
        precondition(position >= 0 && position <= count, "truncate position out of range")
        count = position
    }
}
