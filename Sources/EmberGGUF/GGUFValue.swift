/// A metadata value of a GGUF file.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array(GGUFArray)
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    /// The value as an integer, when it is an integer or a bool that fits in `Int`.
    public var integerValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        case .bool(let v): return v ? 1 : 0
        default: return nil
        }
    }

    /// The value as a float, when it is a number.
    public var floatValue: Float? {
        switch self {
        case .float32(let v): return v
        case .float64(let v): return Float(v)
        default: return integerValue.map(Float.init)
        }
    }

    /// GGUF's value type number for this value.
    var typeCode: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }
}

/// A typed array of GGUF metadata; arrays of arrays nest.
public enum GGUFArray: Sendable, Equatable {
    case uint8([UInt8])
    case int8([Int8])
    case uint16([UInt16])
    case int16([Int16])
    case uint32([UInt32])
    case int32([Int32])
    case float32([Float])
    case bool([Bool])
    case string([String])
    case uint64([UInt64])
    case int64([Int64])
    case float64([Double])
    case array([GGUFArray])

    public var count: Int {
        switch self {
        case .uint8(let a): return a.count
        case .int8(let a): return a.count
        case .uint16(let a): return a.count
        case .int16(let a): return a.count
        case .uint32(let a): return a.count
        case .int32(let a): return a.count
        case .float32(let a): return a.count
        case .bool(let a): return a.count
        case .string(let a): return a.count
        case .uint64(let a): return a.count
        case .int64(let a): return a.count
        case .float64(let a): return a.count
        case .array(let a): return a.count
        }
    }

    /// Elements as integers, when the array holds integers (or bools).
    public var integers: [Int]? {
        switch self {
        case .uint8(let a): return a.map { Int($0) }
        case .int8(let a): return a.map { Int($0) }
        case .uint16(let a): return a.map { Int($0) }
        case .int16(let a): return a.map { Int($0) }
        case .uint32(let a): return a.map { Int($0) }
        case .int32(let a): return a.map { Int($0) }
        case .uint64(let a):
            var result: [Int] = []
            result.reserveCapacity(a.count)
            for value in a {
                guard let converted = Int(exactly: value) else { return nil }
                result.append(converted)
            }
            return result
        case .int64(let a): return a.map { Int($0) }
        case .bool(let a): return a.map { $0 ? 1 : 0 }
        default: return nil
        }
    }

    /// GGUF's value type number of the elements.
    var elementTypeCode: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }
}

/// Where a tensor's data lies in a GGUF file and how it is shaped.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions innermost first (GGML's `ne`): `dimensions[0]` is the row length.
    public let dimensions: [Int]
    public let type: TensorType
    /// Offset of the data from the start of the data section.
    public let offset: Int
    public let byteCount: Int

    public var elementCount: Int { dimensions.reduce(1, *) }
    public var rowLength: Int { dimensions.first ?? 1 }
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }
}

import EmberCore
