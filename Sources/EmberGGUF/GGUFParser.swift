import EmberCore

/// What the parser reads from a GGUF header.
struct GGUFHeader {
    var version: UInt32
    var keys: [String]
    var metadata: [String: GGUFValue]
    var tensors: [GGUFTensorInfo]
    var alignment: Int
    var dataOffset: Int
}

/// Reads and validates a GGUF header from a buffer. Every read is bounds-checked; every count is
/// checked against the bytes that remain before anything is reserved for it.
struct GGUFParser {
    static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    static let maximumDimensions = 4
    static let maximumNesting = 8
    static let maximumKeyLength = 65_535

    let base: UnsafeRawPointer
    /// Bytes readable at `base`.
    let size: Int
    /// Size of the whole file, for checking where tensor data lies: `size` unless only the header
    /// was given.
    let fileSize: Int
    var offset = 0

    init(base: UnsafeRawPointer, size: Int, fileSize: Int? = nil) {
        self.base = base
        self.size = size
        self.fileSize = fileSize ?? size
    }

    var remaining: Int { size - offset }

    mutating func parse() throws(GGUFError) -> GGUFHeader {
        let magic = try read(UInt32.self, field: "magic")
        guard magic == Self.magic else {
            throw GGUFError(.badMagic, field: "magic", offset: 0,
                            "not a GGUF file (the first four bytes are not 'GGUF')")
        }
        let version = try read(UInt32.self, field: "version")
        guard version == 2 || version == 3 else {
            throw GGUFError(.unsupportedVersion, field: "version", offset: 4,
                            "version \(version) is not supported (Ember reads GGUF versions 2 and 3)")
        }
        let tensorCountOffset = offset
        let tensorCount = try read(UInt64.self, field: "tensor count")
        let keyCountOffset = offset
        let keyCount = try read(UInt64.self, field: "metadata count")
        // Each tensor info takes at least 8 (name) + 4 + 8 + 4 + 8 bytes; each key-value at least 8 + 4 + 1.
        guard tensorCount <= UInt64(remaining / 32) else {
            throw GGUFError(.overflow, field: "tensor count", offset: tensorCountOffset,
                            "\(tensorCount) tensors cannot fit in the \(remaining) bytes that remain")
        }
        guard keyCount <= UInt64(remaining / 13) else {
            throw GGUFError(.overflow, field: "metadata count", offset: keyCountOffset,
                            "\(keyCount) metadata entries cannot fit in the \(remaining) bytes that remain")
        }

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        var alignmentOffset = 0
        keys.reserveCapacity(Int(keyCount))
        metadata.reserveCapacity(Int(keyCount))
        for index in 0..<Int(keyCount) {
            let keyOffset = offset
            let key = try readString(field: "metadata key #\(index)")
            guard !key.isEmpty, key.utf8.count <= Self.maximumKeyLength else {
                throw GGUFError(.invalidValue, field: "metadata key #\(index)", offset: keyOffset,
                                "a key must be 1 to \(Self.maximumKeyLength) bytes long")
            }
            guard metadata[key] == nil else {
                throw GGUFError(.duplicate, field: "metadata key '\(key)'", offset: keyOffset, "the key appears twice")
            }
            let typeOffset = offset
            let type = try read(UInt32.self, field: "type of '\(key)'")
            if key == "general.alignment" { alignmentOffset = offset }
            let value = try readValue(type: type, typeOffset: typeOffset, field: "value of '\(key)'", depth: 0)
            keys.append(key)
            metadata[key] = value
        }

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard case .uint32(let declared) = value, declared > 0, declared & (declared - 1) == 0, declared <= 1 << 16 else {
                throw GGUFError(.invalidValue, field: "general.alignment", offset: alignmentOffset,
                                "alignment must be a uint32 power of two up to 65536, not \(value)")
            }
            alignment = Int(declared)
        }

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(Int(tensorCount))
        var names = Set<String>()
        for index in 0..<Int(tensorCount) {
            let infoOffset = offset
            let name = try readString(field: "tensor #\(index) name")
            guard !names.contains(name) else {
                throw GGUFError(.duplicate, field: "tensor '\(name)'", offset: infoOffset, "two tensors have this name")
            }
            names.insert(name)
            let dimensionCountOffset = offset
            let dimensionCount = try read(UInt32.self, field: "tensor '\(name)' dimension count")
            guard (1...UInt32(Self.maximumDimensions)).contains(dimensionCount) else {
                throw GGUFError(.invalidValue, field: "tensor '\(name)' dimension count", offset: dimensionCountOffset,
                                "\(dimensionCount) dimensions (1 to \(Self.maximumDimensions) allowed)")
            }
            var dimensions: [Int] = []
            var elements = 1
            for axis in 0..<Int(dimensionCount) {
                let dimensionOffset = offset
                let raw = try read(UInt64.self, field: "tensor '\(name)' dimension \(axis)")
                guard raw > 0, raw <= UInt64(Int.max) else {
                    throw GGUFError(.invalidValue, field: "tensor '\(name)' dimension \(axis)", offset: dimensionOffset,
                                    "dimension \(raw) must be positive")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(raw))
                guard !overflow else {
                    throw GGUFError(.overflow, field: "tensor '\(name)' dimension \(axis)", offset: dimensionOffset,
                                    "the element count overflows")
                }
                elements = product
                dimensions.append(Int(raw))
            }
            let typeOffset = offset
            let rawType = try read(UInt32.self, field: "tensor '\(name)' type")
            guard let type = TensorType(rawValue: rawType) else {
                throw GGUFError(.unknownType, field: "tensor '\(name)' type", offset: typeOffset,
                                "unknown tensor type \(rawType)")
            }
            guard dimensions[0] % type.blockSize == 0 else {
                throw GGUFError(.invalidValue, field: "tensor '\(name)' dimension 0", offset: dimensionCountOffset + 4,
                                "a row of \(dimensions[0]) is not a whole number of \(type) blocks of \(type.blockSize)")
            }
            guard let byteCount = type.byteCount(elements: elements) else {
                throw GGUFError(.overflow, field: "tensor '\(name)'", offset: infoOffset, "the byte size overflows")
            }
            let dataOffsetField = offset
            let relative = try read(UInt64.self, field: "tensor '\(name)' offset")
            guard relative <= UInt64(Int.max), Int(relative) % alignment == 0 else {
                throw GGUFError(.misaligned, field: "tensor '\(name)' offset", offset: dataOffsetField,
                                "offset \(relative) is not a multiple of the alignment \(alignment)")
            }
            tensors.append(GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: Int(relative),
                                          byteCount: byteCount))
        }

        let (padded, overflow) = offset.addingReportingOverflow(alignment - 1)
        guard !overflow else {
            throw GGUFError(.overflow, field: "data section", offset: offset, "the data offset overflows")
        }
        let dataOffset = padded / alignment * alignment
        if !tensors.isEmpty, dataOffset > fileSize {
            throw GGUFError(.truncated, field: "data section", offset: offset,
                            "the file ends before the tensor data begins (at byte \(dataOffset))")
        }
        let dataSize = fileSize - min(dataOffset, fileSize)

        // Every tensor inside the data section, and no two overlapping.
        let byOffset = tensors.sorted { $0.offset < $1.offset }
        var previousEnd = 0
        var previousName = ""
        for tensor in byOffset {
            let (end, overflow) = tensor.offset.addingReportingOverflow(tensor.byteCount)
            guard !overflow, end <= dataSize else {
                throw GGUFError(.outOfBounds, field: "tensor '\(tensor.name)' data", offset: dataOffset &+ tensor.offset,
                                "\(tensor.byteCount) bytes at data offset \(tensor.offset) run past the end of the file (\(dataSize) data bytes)")
            }
            guard tensor.offset >= previousEnd else {
                throw GGUFError(.overlap, field: "tensor '\(tensor.name)' data", offset: dataOffset + tensor.offset,
                                "its data overlaps tensor '\(previousName)'")
            }
            previousEnd = end
            previousName = tensor.name
        }
        return GGUFHeader(version: version, keys: keys, metadata: metadata, tensors: tensors, alignment: alignment,
                          dataOffset: dataOffset)
    }

    // MARK: Primitive reads

    @inline(__always)
    mutating func read<T: FixedWidthInteger>(_ type: T.Type, field: @autoclosure () -> String) throws(GGUFError) -> T {
        let width = MemoryLayout<T>.size
        guard remaining >= width else {
            throw GGUFError(.truncated, field: field(), offset: offset,
                            "the file ends here (\(remaining) bytes left, \(width) needed)")
        }
        let value = T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += width
        return value
    }

    mutating func readString(field: @autoclosure () -> String) throws(GGUFError) -> String {
        let lengthOffset = offset
        let length = try read(UInt64.self, field: field())
        guard length <= UInt64(remaining) else {
            throw GGUFError(.truncated, field: field(), offset: lengthOffset,
                            "a string of \(length) bytes cannot fit in the \(remaining) bytes that remain")
        }
        let bytes = UnsafeRawBufferPointer(start: base + offset, count: Int(length))
        guard let string = String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw GGUFError(.invalidUTF8, field: field(), offset: offset, "the string is not valid UTF-8")
        }
        offset += Int(length)
        return string
    }

    /// Reads one value of GGUF type `type`.
    mutating func readValue(type: UInt32, typeOffset: Int, field: @autoclosure () -> String, depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case 0: return .uint8(try read(UInt8.self, field: field()))
        case 1: return .int8(try read(Int8.self, field: field()))
        case 2: return .uint16(try read(UInt16.self, field: field()))
        case 3: return .int16(try read(Int16.self, field: field()))
        case 4: return .uint32(try read(UInt32.self, field: field()))
        case 5: return .int32(try read(Int32.self, field: field()))
        case 6: return .float32(Float(bitPattern: try read(UInt32.self, field: field())))
        case 7: return .bool(try readBool(field: field()))
        case 8: return .string(try readString(field: field()))
        case 9: return .array(try readArray(field: field(), depth: depth + 1))
        case 10: return .uint64(try read(UInt64.self, field: field()))
        case 11: return .int64(try read(Int64.self, field: field()))
        case 12: return .float64(Double(bitPattern: try read(UInt64.self, field: field())))
        default:
            throw GGUFError(.unknownType, field: field(), offset: typeOffset, "unknown value type \(type)")
        }
    }

    mutating func readBool(field: @autoclosure () -> String) throws(GGUFError) -> Bool {
        let at = offset
        let byte = try read(UInt8.self, field: field())
        guard byte <= 1 else {
            throw GGUFError(.invalidValue, field: field(), offset: at, "a bool must be 0 or 1, not \(byte)")
        }
        return byte == 1
    }

    /// Smallest encoded size of one element of a GGUF value type.
    static func minimumSize(of type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12: return 8
        case 8: return 8
        case 9: return 12
        default: return nil
        }
    }

    mutating func readArray(field: @autoclosure () -> String, depth: Int) throws(GGUFError) -> GGUFArray {
        let start = offset
        guard depth <= Self.maximumNesting else {
            throw GGUFError(.invalidValue, field: field(), offset: start, "arrays nest deeper than \(Self.maximumNesting) levels")
        }
        let elementType = try read(UInt32.self, field: field())
        let countOffset = offset
        let rawCount = try read(UInt64.self, field: field())
        guard let elementSize = Self.minimumSize(of: elementType) else {
            throw GGUFError(.unknownType, field: field(), offset: start, "unknown array element type \(elementType)")
        }
        guard rawCount <= UInt64(remaining / elementSize) else {
            throw GGUFError(.truncated, field: field(), offset: countOffset,
                            "an array of \(rawCount) elements cannot fit in the \(remaining) bytes that remain")
        }
        let count = Int(rawCount)
        switch elementType {
        case 0: return .uint8(try readIntegers(UInt8.self, count: count, field: field()))
        case 1: return .int8(try readIntegers(Int8.self, count: count, field: field()))
        case 2: return .uint16(try readIntegers(UInt16.self, count: count, field: field()))
        case 3: return .int16(try readIntegers(Int16.self, count: count, field: field()))
        case 4: return .uint32(try readIntegers(UInt32.self, count: count, field: field()))
        case 5: return .int32(try readIntegers(Int32.self, count: count, field: field()))
        case 6: return .float32(try readIntegers(UInt32.self, count: count, field: field()).map { Float(bitPattern: $0) })
        case 7:
            var values: [Bool] = []
            values.reserveCapacity(count)
            for index in 0..<count { values.append(try readBool(field: "\(field()) element \(index)")) }
            return .bool(values)
        case 8:
            var values: [String] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try readString(field: field())) }
            return .string(values)
        case 9:
            var values: [GGUFArray] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try readArray(field: field(), depth: depth + 1)) }
            return .array(values)
        case 10: return .uint64(try readIntegers(UInt64.self, count: count, field: field()))
        case 11: return .int64(try readIntegers(Int64.self, count: count, field: field()))
        default: return .float64(try readIntegers(UInt64.self, count: count, field: field()).map { Double(bitPattern: $0) })
        }
    }

    /// `count` little-endian integers, copied in one pass (the count was checked against the remaining bytes).
    mutating func readIntegers<T: FixedWidthInteger>(_ type: T.Type, count: Int, field: @autoclosure () -> String) throws(GGUFError) -> [T] {
        let width = MemoryLayout<T>.size
        guard count * width <= remaining else {
            throw GGUFError(.truncated, field: field(), offset: offset, "the array runs past the end of the file")
        }
        let start = base + offset
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                buffer[index] = T(littleEndian: start.loadUnaligned(fromByteOffset: index * width, as: T.self))
            }
            initialized = count
        }
        offset += count * width
        return values
    }
}
