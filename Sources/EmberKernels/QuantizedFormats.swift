import EmberCore

/// One quantized (or float) weight format as Ember multiplies it: every fact the kernels, the
/// loader, the memory plan and the rearranging of weights read, in one row per format — in the
/// spirit of candle's `GgmlType`. The generic code (`Kernels.matmul`, `MatrixKernel`,
/// `InterleavedWeights`, `MemoryPlan`) reads these rows and holds no per-format switch.
///
/// Adding a format is a row in `all`, its block layout below, and its kernels: a scalar reference
/// in `ReferenceKernels`, a vectorized `RowDot` (in `VectorKernels`), and, when it interleaves, a
/// `rearrange` function and the layout's kernels.
public struct QuantizedFormat: Sendable {
    /// The GGUF type.
    public let type: TensorType
    /// The type activations are quantized to before a dot product with these weights, as llama.cpp
    /// does: integer products for quantized weights, half precision for F16.
    public let activationType: TensorType
    /// Whether its kernels follow llama.cpp's arithmetic to the bit (F32, F16, Q8_0): a model
    /// whose every matrix is of such a format can give llama.cpp's logits bit for bit.
    public let followsLlamaCpp: Bool
    /// The vectorized dot product of one weight row with one activation row of `activationType`.
    let dot: Kernels.DotKernel
    /// `matmul`'s loop over the file's rows, specialized for `dot` (resolved once per matrix; the
    /// dot product inlines in it).
    let multiplyRows: Kernels.RowLoop
    /// The loop for llama.cpp's one-dot-product-at-a-time order (`mul_mat_id`, the experts), where
    /// it adds up in another order than `multiplyRows`.
    let multiplyRowsOneByOne: Kernels.RowLoop
    /// Row dot products that add up in the interleaved kernels' order (`SequentialDot`), for
    /// weights read from the file while they stream; given whether Q8_0 follows llama.cpp's order.
    /// Nil when `multiplyRows` already gives the interleaved kernels' bits.
    let sequentialDot: (@Sendable (_ llamaOrder: Bool) -> Kernels.DotKernel)?
    /// The layout the weights are rearranged into at load, nil when they stay in the file's layout.
    let interleaving: Interleaving?
    /// Bytes of scratch beyond the quantized activations that a batch of `tokens` needs (token
    /// vectors of transposed activations for the prompt kernels; 0 when none).
    let laneScratchBytes: @Sendable (_ columns: Int, _ tokens: Int) -> Int
    /// The vectorized widening of `count` elements to floats, nil where the scalar reference
    /// (`ReferenceKernels.dequantize`) is used (rows of the token table, a quantized KV cache).
    let dequantize: Kernels.DequantizeKernel?

    init<Kernel: RowDot>(_ type: TensorType, activation: TensorType, kernel: Kernel.Type, followsLlamaCpp: Bool = false,
                         oneByOne: Kernels.RowLoop? = nil,
                         sequentialDot: (@Sendable (Bool) -> Kernels.DotKernel)? = nil, interleaving: Interleaving? = nil,
                         laneScratchBytes: @escaping @Sendable (Int, Int) -> Int = { _, _ in 0 },
                         dequantize: Kernels.DequantizeKernel? = nil) {
        self.type = type
        activationType = activation
        self.followsLlamaCpp = followsLlamaCpp
        dot = Kernel.dot
        multiplyRows = Kernels.rowLoop(Kernel.self)
        multiplyRowsOneByOne = oneByOne ?? multiplyRows
        self.sequentialDot = sequentialDot
        self.interleaving = interleaving
        self.laneScratchBytes = laneScratchBytes
        self.dequantize = dequantize
    }

    /// Every format Ember multiplies by.
    public static let all: [QuantizedFormat] = [
        QuantizedFormat(.f32, activation: .f32, kernel: F32Dot.self, followsLlamaCpp: true, oneByOne: Kernels.rowLoop(F32VectorDot.self)),
        QuantizedFormat(.f16, activation: .f16, kernel: F16Dot.self, followsLlamaCpp: true, dequantize: VectorKernels.halfToFloat),
        QuantizedFormat(.q4_0, activation: .q8_0, kernel: Q4_0Dot.self, dequantize: { VectorKernels.dequantizeQ4_0($0, $1, $2 / 32) }),
        QuantizedFormat(.q4_1, activation: .q8_1, kernel: Q4_1Dot.self, sequentialDot: { _ in SequentialDot.q4_1 },
                        interleaving: .q4_1Layout(rearrange: InterleavedWeights.copyQ4_1), laneScratchBytes: tokenLaneScratchBytes,
                        dequantize: { VectorKernels.dequantizeQ4_1($0, $1, $2 / 32) }),
        // Q5_0 is decoded to signed bytes in Q8_0's interleaved layout.
        QuantizedFormat(.q5_0, activation: .q8_0, kernel: Q5_0Dot.self, sequentialDot: { _ in SequentialDot.q5_0 },
                        interleaving: .q8_0Layout(rearrange: InterleavedWeights.decodeQ5_0) { _ in false },
                        laneScratchBytes: tokenLaneScratchBytes),
        QuantizedFormat(.q5_1, activation: .q8_1, kernel: Q5_1Dot.self),
        QuantizedFormat(.q8_0, activation: .q8_0, kernel: Q8_0Dot.self, followsLlamaCpp: true,
                        sequentialDot: { $0 ? SequentialDot.q8_0 : SequentialDot.q8_0Blocks },
                        interleaving: .q8_0Layout(rearrange: InterleavedWeights.copyQ8_0) { $0 },
                        dequantize: { VectorKernels.dequantizeQ8_0($0, $1, $2 / 32) }),
        // Q4_K keeps its own numbers, 3 % larger than the file (`interleaveQ4_K`).
        QuantizedFormat(.q4_K, activation: .q8_K, kernel: Q4_KDot.self,
                        interleaving: .superBlockLayout(.q4_K, superBlockBytes: Q4_KGroupSuperBlock.bytes,
                                                        rearrange: InterleavedWeights.interleaveQ4_K,
                                                        multiply: InterleavedWeights.multiplyQ4_KLayout, oneToken: InterleavedWeights.oneTokenQ4_K),
                        laneScratchBytes: superBlockLaneScratchBytes),
        QuantizedFormat(.q5_K, activation: .q8_K, kernel: Q5_KDot.self),
        // Q6_K keeps the file's size, per 256 elements (`interleaveQ6_K`).
        QuantizedFormat(.q6_K, activation: .q8_K, kernel: Q6_KDot.self,
                        interleaving: .superBlockLayout(.q6_K, superBlockBytes: InterleavedWeights.q6SuperBlockBytes,
                                                        rearrange: InterleavedWeights.rearrangeQ6_K,
                                                        multiply: InterleavedWeights.multiplyQ6_KLayout, oneToken: InterleavedWeights.oneTokenQ6_K),
                        laneScratchBytes: superBlockLaneScratchBytes),
    ]

    /// Token vectors of the small-weight prompt kernels (`InterleavedWeights.multiplyTokenLanes`).
    private static let tokenLaneScratchBytes: @Sendable (Int, Int) -> Int = {
        InterleavedWeights.tokenLaneScratchBytes(columns: $0, tokens: $1)
    }

    /// Q8_K token vectors of the super-block prompt kernels (Q4_K, Q6_K).
    private static let superBlockLaneScratchBytes: @Sendable (Int, Int) -> Int = {
        InterleavedWeights.superBlockLaneScratchBytes(columns: $0, tokens: $1)
    }

    /// The row of `type`, nil for a type Ember does not multiply by.
    public static func format(_ type: TensorType) -> QuantizedFormat? {
        let index = Int(type.rawValue)
        return index < byRawType.count ? byRawType[index] : nil
    }

    /// `all` indexed by the GGUF type number: a lookup per row of a quantized KV cache stays cheap.
    private static let byRawType: [QuantizedFormat?] = {
        var table = [QuantizedFormat?](repeating: nil, count: Int(TensorType.allCases.map(\.rawValue).max() ?? 0) + 1)
        for format in all { table[Int(format.type.rawValue)] = format }
        return table
    }()

    /// The type whose interleaved layout the weights are rearranged into at load, nil when they
    /// stay in the file's layout.
    public var interleavedType: TensorType? { interleaving?.layoutType }
    /// Bytes of one interleaved group's block (`InterleavedWeights.rowGroup` rows of one
    /// 32-element block); 0 when the format does not interleave.
    var groupBlockBytes: Int { interleaving?.groupBlockBytes ?? 0 }
    /// Bytes of `elements` weights (whole groups of rows) once rearranged; the file's bytes when
    /// the format does not interleave.
    public func residentByteCount(elements: Int) -> Int {
        guard let interleaving else { return type.byteCount(elements: elements) ?? 0 }
        return elements / (InterleavedWeights.rowGroup * InterleavedWeights.blockElements) * interleaving.groupBlockBytes
    }
}

/// How a format's weights are rearranged at load (`InterleavedWeights`) and multiplied after.
struct Interleaving: Sendable {
    /// The type whose block layout the interleaved block holds (Q5_0 is decoded into Q8_0's).
    let layoutType: TensorType
    /// Bytes of one group's block: `InterleavedWeights.rowGroup` rows of one 32-element block.
    let groupBlockBytes: Int
    /// Writes groups of rows of the file's layout into the interleaved one.
    let rearrange: InterleavedWeights.Rearrange
    /// The product over the rearranged weights, given whether Q8_0 follows llama.cpp's order
    /// (resolved once per matrix, when it is rearranged).
    let multiply: @Sendable (_ llamaOrder: Bool) -> InterleavedWeights.Multiply
    /// One token's product over a range of groups, given the same choice.
    let oneToken: @Sendable (_ llamaOrder: Bool) -> InterleavedWeights.OneToken

    /// A layout of whole 256-element super-blocks (`superBlockBytes` a group's), multiplied as
    /// `type` with Q8_K activations.
    static func superBlockLayout(_ type: TensorType, superBlockBytes: Int, rearrange: @escaping InterleavedWeights.Rearrange,
                                 multiply: @escaping InterleavedWeights.Multiply,
                                 oneToken: @escaping InterleavedWeights.OneToken) -> Interleaving {
        Interleaving(layoutType: type,
                     groupBlockBytes: superBlockBytes / (TensorType.q8_K.blockSize / InterleavedWeights.blockElements),
                     rearrange: rearrange, multiply: { _ in multiply }, oneToken: { _ in oneToken })
    }

    /// Q4_1's layout, multiplied as Q4_1.
    static func q4_1Layout(rearrange: @escaping InterleavedWeights.Rearrange) -> Interleaving {
        Interleaving(layoutType: .q4_1, groupBlockBytes: Q4_1GroupBlock.bytes, rearrange: rearrange,
                     multiply: { _ in InterleavedWeights.smallWeights(oneTokenQ4_1) }, oneToken: { _ in oneTokenQ4_1 })
    }

    /// Q8_0's layout (Q5_0 decoded into it), its last tokens multiplied one by one in llama.cpp's
    /// order when `inLlamaOrder` says so for the model's choice, else by one integer sum per block.
    static func q8_0Layout(rearrange: @escaping InterleavedWeights.Rearrange,
                           inLlamaOrder: @escaping @Sendable (_ llamaOrder: Bool) -> Bool) -> Interleaving {
        Interleaving(layoutType: .q8_0, groupBlockBytes: Q8_0GroupBlock.bytes, rearrange: rearrange,
                     multiply: { InterleavedWeights.smallWeights(inLlamaOrder($0) ? oneTokenQ8_0InLlamaOrder : oneTokenBlockSums) },
                     oneToken: { inLlamaOrder($0) ? oneTokenQ8_0InLlamaOrder : oneTokenBlockSums })
    }

    /// The one-token products of the small-weight layouts: the C kernel where it runs, else the
    /// Swift row kernels (`InterleavedWeights.oneTokenOfSmallWeights`).
    private static let oneTokenQ4_1 = InterleavedWeights.oneTokenOfSmallWeights(InterleavedWeights.rowsQ4_1, integerRows: .q4_1)
    private static let oneTokenBlockSums = InterleavedWeights.oneTokenOfSmallWeights(InterleavedWeights.rowsBlockSums,
                                                                                    integerRows: .q8_0BlockSums)
    private static let oneTokenQ8_0InLlamaOrder = InterleavedWeights.oneTokenOfSmallWeights(InterleavedWeights.rowsQ8_0InLlamaOrder,
                                                                                           integerRows: nil)
}

// MARK: Block layouts

// Byte offsets inside ggml's blocks, named as ggml's `block_*` structs name their fields (`d`,
// `m`, `dmin`, `scales`, `qh`, `qs`, `bsums`). `bytes` is the whole block, which `BlockLayoutTests`
// checks against `TensorType.bytesPerBlock`.

/// `block_q4_1`: `half d; half m; uint8 qs[16]`.
enum Q4_1Block {
    static let scale = 0
    static let minimum = 2
    static let quants = 4
    static let bytes = 20
}

/// `block_q5_0`: `half d; uint8 qh[4]; uint8 qs[16]`.
enum Q5_0Block {
    static let scale = 0
    static let highBits = 2
    static let quants = 6
    static let bytes = 22
}

/// `block_q8_0`: `half d; int8 qs[32]`.
enum Q8_0Block {
    static let scale = 0
    static let quants = 2
    static let bytes = 34
}

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

// Interleaved blocks: one 32-element block of `InterleavedWeights.rowGroup` rows.

/// Q4_1's interleaved block: the rows' `d` halves, their `m` halves, then
/// for j in 0..<16 the rows' packed byte j.
enum Q4_1GroupBlock {
    static let scales = 0
    static let minimums = scales + InterleavedWeights.rowGroup * 2
    static let quants = minimums + InterleavedWeights.rowGroup * 2
    static let bytes = InterleavedWeights.rowGroup * Q4_1Block.bytes
}

/// Q8_0's interleaved block (Q5_0 decoded too): the rows' `d` halves, then for j in 0..<32 the
/// rows' byte j.
enum Q8_0GroupBlock {
    static let scales = 0
    static let quants = scales + InterleavedWeights.rowGroup * 2
    static let bytes = InterleavedWeights.rowGroup * Q8_0Block.bytes
}
