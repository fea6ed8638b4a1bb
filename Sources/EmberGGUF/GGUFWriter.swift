import EmberCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds GGUF files: metadata in insertion order, then tensors, each aligned.
/// Used by tests to make tiny random-weight models and by tools that rewrite files.
public struct GGUFWriter: Sendable {
    public let version: UInt32
    public let alignment: Int
    private var entries: [(key: String, value: GGUFValue)] = []
    private var tensors: [(name: String, dimensions: [Int], type: TensorType, data: [UInt8])] = []

    public init(version: UInt32 = 3, alignment: Int = 32) {
        precondition(version == 2 || version == 3, "GGUFWriter writes versions 2 and 3")
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        self.version = version
        self.alignment = alignment
        if alignment != 32 { entries.append(("general.alignment", .uint32(UInt32(alignment)))) }
    }

    /// Sets a metadata value; a key set again keeps its first position.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let index = entries.firstIndex(where: { $0.key == key }) {
            entries[index].value = value
        } else {
            entries.append((key, value))
        }
    }

    /// Adds a tensor; `data` must hold exactly the bytes its type and dimensions need.
    public mutating func addTensor(name: String, dimensions: [Int], type: TensorType, data: [UInt8]) {
        let elements = dimensions.reduce(1, *)
        precondition(type.byteCount(elements: elements) == data.count,
                     "tensor '\(name)': \(data.count) bytes given, \(type.byteCount(elements: elements) ?? -1) needed")
        tensors.append((name, dimensions, type, data))
    }

    /// The file's bytes.
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) }
        }
        func appendString(_ string: String) {
            append(UInt64(string.utf8.count))
            output.append(contentsOf: string.utf8)
        }
        func appendArray(_ array: GGUFArray) {
            append(array.elementTypeCode)
            append(UInt64(array.count))
            switch array {
            case .uint8(let a): a.forEach { append($0) }
            case .int8(let a): a.forEach { append($0) }
            case .uint16(let a): a.forEach { append($0) }
            case .int16(let a): a.forEach { append($0) }
            case .uint32(let a): a.forEach { append($0) }
            case .int32(let a): a.forEach { append($0) }
            case .float32(let a): a.forEach { append($0.bitPattern) }
            case .bool(let a): a.forEach { append(UInt8($0 ? 1 : 0)) }
            case .string(let a): a.forEach { appendString($0) }
            case .uint64(let a): a.forEach { append($0) }
            case .int64(let a): a.forEach { append($0) }
            case .float64(let a): a.forEach { append($0.bitPattern) }
            case .array(let a): a.forEach { appendArray($0) }
            }
        }
        func appendValue(_ value: GGUFValue) {
            switch value {
            case .uint8(let v): append(v)
            case .int8(let v): append(v)
            case .uint16(let v): append(v)
            case .int16(let v): append(v)
            case .uint32(let v): append(v)
            case .int32(let v): append(v)
            case .float32(let v): append(v.bitPattern)
            case .bool(let v): append(UInt8(v ? 1 : 0))
            case .string(let v): appendString(v)
            case .array(let v): appendArray(v)
            case .uint64(let v): append(v)
            case .int64(let v): append(v)
            case .float64(let v): append(v.bitPattern)
            }
        }

        append(UInt32(0x4655_4747))
        append(version)
        append(UInt64(tensors.count))
        append(UInt64(entries.count))
        for entry in entries {
            appendString(entry.key)
            append(entry.value.typeCode)
            appendValue(entry.value)
        }
        var dataOffset = 0
        var offsets: [Int] = []
        for tensor in tensors {
            offsets.append(dataOffset)
            dataOffset += (tensor.data.count + alignment - 1) / alignment * alignment
        }
        for (tensor, offset) in zip(tensors, offsets) {
            appendString(tensor.name)
            append(UInt32(tensor.dimensions.count))
            tensor.dimensions.forEach { append(UInt64($0)) }
            append(tensor.type.rawValue)
            append(UInt64(offset))
        }
        func pad() {
            let padding = (alignment - output.count % alignment) % alignment
            output.append(contentsOf: repeatElement(0, count: padding))
        }
        pad()
        for tensor in tensors {
            output.append(contentsOf: tensor.data)
            pad()
        }
        return output
    }

    /// Writes the file to `path` through a temporary file beside it, flushed and renamed into place
    /// (EmberCore's ``AtomicOutputFile``), so a failed write never leaves a partial file under the final name.
    public func write(to path: String) throws(GGUFError) {
        do {
            let file = try AtomicOutputFile(path: path)
            try file.write(serialized(), at: 0)
            try file.commit()
        } catch {
            throw GGUFError(.io, field: "file '\(path)'", offset: 0, error.message)
        }
    }
}
