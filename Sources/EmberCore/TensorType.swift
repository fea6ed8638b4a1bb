/// The element type of a tensor as stored in a model file.
///
/// Raw values are GGML's type numbers, the one place where they are named.
/// A quantized type stores elements in blocks: `blockSize` elements in `bytesPerBlock` bytes.
public enum TensorType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case i8 = 24
    case i16 = 25
    case i32 = 26
    case i64 = 27
    case f64 = 28
    case bf16 = 30

    /// Number of elements in one block (1 for plain types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K: return 256
        }
    }

    /// Number of bytes in one block.
    public var bytesPerBlock: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .i8: return 1
        case .i16: return 2
        case .i32: return 4
        case .i64, .f64: return 8
        case .q4_0: return 2 + 16
        case .q4_1: return 2 + 2 + 16
        case .q5_0: return 2 + 4 + 16
        case .q5_1: return 2 + 2 + 4 + 16
        case .q8_0: return 2 + 32
        case .q8_1: return 2 + 2 + 32
        case .q2_K: return 256 / 16 + 256 / 4 + 2 + 2
        case .q3_K: return 256 / 8 + 256 / 4 + 12 + 2
        case .q4_K: return 2 + 2 + 12 + 256 / 2
        case .q5_K: return 2 + 2 + 12 + 256 / 8 + 256 / 2
        case .q6_K: return 256 / 2 + 256 / 4 + 256 / 16 + 2
        case .q8_K: return 4 + 256 + 256 / 16 * 2
        }
    }

    /// Bytes needed for `elementCount` elements, or nil when the count is not a whole number of
    /// blocks or the size overflows.
    public func byteCount(elements elementCount: Int) -> Int? {
        guard elementCount >= 0, elementCount % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elementCount / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : bytes
    }

    /// GGML's lower-case name, as llama.cpp prints it (`q4_K`, `f16`, ...).
    public var name: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .q4_0: return "q4_0"
        case .q4_1: return "q4_1"
        case .q5_0: return "q5_0"
        case .q5_1: return "q5_1"
        case .q8_0: return "q8_0"
        case .q8_1: return "q8_1"
        case .q2_K: return "q2_K"
        case .q3_K: return "q3_K"
        case .q4_K: return "q4_K"
        case .q5_K: return "q5_K"
        case .q6_K: return "q6_K"
        case .q8_K: return "q8_K"
        case .i8: return "i8"
        case .i16: return "i16"
        case .i32: return "i32"
        case .i64: return "i64"
        case .f64: return "f64"
        case .bf16: return "bf16"
        }
    }

    public var description: String { name }
}
