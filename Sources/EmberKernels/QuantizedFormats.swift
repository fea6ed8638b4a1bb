import EmberCore

/// One quantized (or float) weight format as Ember multiplies it: the facts the kernels, the
/// loader, the memory plan and the rearranging of weights read, in one row per format — in the
/// spirit of candle's `GgmlType`. Adding a format is a row here, its block layout below, and its
/// kernels (a scalar reference in `ReferenceKernels`, a vectorized twin in `VectorKernels`, and a
/// case in `Kernels.matmul`'s specialized switch).
public struct QuantizedFormat: Sendable {
    /// The GGUF type.
    public let type: TensorType
    /// The type activations are quantized to before a dot product with these weights, as llama.cpp
    /// does: integer products for quantized weights, half precision for F16.
    public let activationType: TensorType
    /// The vectorized dot product of one weight row with one activation row of `activationType`.
    let dot: Kernels.DotKernel
    /// The type whose interleaved layout the weights are rearranged into at load
    /// (`InterleavedWeights`), nil when they stay in the file's layout.
    public let interleavedType: TensorType?
    /// Bytes of one interleaved group's block (`InterleavedWeights.rowGroup` rows of one block).
    let groupBlockBytes: Int
    /// Whether batches multiply with tokens in the vector lanes after a transposed copy of the
    /// activations, which needs scratch beyond the quantized activations.
    let tokenLanes: Bool

    /// Every format Ember multiplies by.
    public static let all: [QuantizedFormat] = [
        QuantizedFormat(type: .f32, activationType: .f32, dot: F32Dot.dot, interleavedType: nil, groupBlockBytes: 0, tokenLanes: false),
        QuantizedFormat(type: .f16, activationType: .f16, dot: F16Dot.dot, interleavedType: nil, groupBlockBytes: 0, tokenLanes: false),
        QuantizedFormat(type: .q4_0, activationType: .q8_0, dot: Q4_0Dot.dot, interleavedType: nil, groupBlockBytes: 0, tokenLanes: false),
        QuantizedFormat(type: .q4_1, activationType: .q8_1, dot: Q4_1Dot.dot, interleavedType: .q4_1,
                        groupBlockBytes: InterleavedWeights.q4_1GroupBlockBytes, tokenLanes: true),
        // Q5_0 is decoded to signed bytes in Q8_0's interleaved layout.
        QuantizedFormat(type: .q5_0, activationType: .q8_0, dot: Q5_0Dot.dot, interleavedType: .q8_0,
                        groupBlockBytes: InterleavedWeights.q8_0GroupBlockBytes, tokenLanes: true),
        QuantizedFormat(type: .q5_1, activationType: .q8_1, dot: Q5_1Dot.dot, interleavedType: nil, groupBlockBytes: 0, tokenLanes: false),
        QuantizedFormat(type: .q8_0, activationType: .q8_0, dot: Q8_0Dot.dot, interleavedType: .q8_0,
                        groupBlockBytes: InterleavedWeights.q8_0GroupBlockBytes, tokenLanes: false),
        // Q4_K is rewritten as Q4_1 sub-blocks (and multiplied as Q4_1 once interleaved).
        QuantizedFormat(type: .q4_K, activationType: .q8_K, dot: Q4_KDot.dot, interleavedType: .q4_1,
                        groupBlockBytes: InterleavedWeights.q4_1GroupBlockBytes, tokenLanes: true),
        QuantizedFormat(type: .q5_K, activationType: .q8_K, dot: Q5_KDot.dot, interleavedType: nil, groupBlockBytes: 0, tokenLanes: false),
        // Q6_K keeps the file's size, per 256 elements (`interleaveQ6_K`).
        QuantizedFormat(type: .q6_K, activationType: .q8_K, dot: Q6_KDot.dot, interleavedType: .q6_K,
                        groupBlockBytes: InterleavedWeights.q6SuperBlockBytes / 8, tokenLanes: false),
    ]

    /// The row of `type`, nil for a type Ember does not multiply by.
    public static func format(_ type: TensorType) -> QuantizedFormat? {
        all.first { $0.type == type }
    }
}

// MARK: Block layouts

// Byte offsets inside ggml's blocks, named as ggml's `block_*` structs name their fields (`d`,
// `dmin`, `scales`, `qh`, `qs`, `bsums`). `bytes` is the whole block, which `BlockLayoutTests`
// checks against `TensorType.bytesPerBlock`.

/// `block_q8_K` (activations of K-quant dot products): `float d; int8 qs[256]; int16 bsums[16]`.
enum Q8_KBlock {
    static let scale = 0
    static let quants = 4
    /// Sums of each 16 quants.
    static let sums = 260
    static let bytes = 292
}

/// `block_q4_K`: `half d; half dmin; uint8 scales[12]; uint8 qs[128]`.
enum Q4_KBlock {
    static let scale = 0
    static let minimumScale = 2
    static let scales = 4
    static let quants = 16
    static let bytes = 144
}

/// `block_q5_K`: `half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]`.
enum Q5_KBlock {
    static let scale = 0
    static let minimumScale = 2
    static let scales = 4
    static let highBits = 16
    static let quants = 48
    static let bytes = 176
}

/// `block_q6_K`: `uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d`.
enum Q6_KBlock {
    static let lowBits = 0
    static let highBits = 128
    static let scales = 192
    static let scale = 208
    static let bytes = 210
}
