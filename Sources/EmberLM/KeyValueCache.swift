/// Keys and values of every layer for up to `capacity` positions, stored in half precision as
/// llama.cpp's default F16 cache does.
///
/// Layout per layer: `capacity` rows of `keyWidth` (keys) or `valueWidth` (values) halves, the
/// row of position p at offset p × width. Owned by one inference session; not shared.
public final class KeyValueCache {
    public let layerCount: Int
    public let capacity: Int
    public let keyWidth: Int
    public let valueWidth: Int
    /// Number of positions filled.
    public internal(set) var count: Int = 0
    let keys: UnsafeMutablePointer<Float16>
    let values: UnsafeMutablePointer<Float16>

    public init(layerCount: Int, capacity: Int, keyWidth: Int, valueWidth: Int) {
        self.layerCount = layerCount
        self.capacity = capacity
        self.keyWidth = keyWidth
        self.valueWidth = valueWidth
        keys = .allocate(capacity: layerCount * capacity * keyWidth)
        values = .allocate(capacity: layerCount * capacity * valueWidth)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes this cache holds.
    public var byteCount: Int { layerCount * capacity * (keyWidth + valueWidth) * MemoryLayout<Float16>.size }

    /// Bytes a cache of these dimensions needs.
    public static func byteCount(layerCount: Int, capacity: Int, keyWidth: Int, valueWidth: Int) -> Int {
        layerCount * capacity * (keyWidth + valueWidth) * MemoryLayout<Float16>.size
    }

    @inline(__always)
    func keyRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float16> {
        keys + (layer * capacity + position) * keyWidth
    }

    @inline(__always)
    func valueRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float16> {
        values + (layer * capacity + position) * valueWidth
    }

    /// Forgets every position.
    public func clear() { count = 0 }

    /// Forgets positions from `position` on.
    public func truncate(to position: Int) {
        precondition(position >= 0 && position <= count, "truncate position out of range")
        count = position
    }
}
