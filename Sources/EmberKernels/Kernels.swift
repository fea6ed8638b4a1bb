import CIntegerKernels
import EmberCore

/// Quantized block formats and the kernels over them: dequantization, quantization of
/// activations, dot products and matrix multiplication.
///
/// Each function has a `…Reference` twin in plain scalar code (`ReferenceKernels`), the
/// specification the vectorized version is tested against.
public enum Kernels {
    /// Types Ember multiplies by: the rows of `QuantizedFormat.all`.
    public static let matrixTypes = Set(QuantizedFormat.all.map(\.type))

    public static func supportsMatrixMultiply(_ type: TensorType) -> Bool { matrixTypes.contains(type) }

    /// The type activations are quantized to before a dot product with weights of `weightType`, as
    /// llama.cpp does: integer products for quantized weights, half precision for F16 — the
    /// format's row; a K-quant Ember does not multiply pairs with Q8_K, anything else with F32.
    public static func activationType(for weightType: TensorType) -> TensorType {
        if let format = QuantizedFormat.format(weightType) { return format.activationType }
        return weightType.blockSize == 256 ? .q8_K : .f32
    }

    // MARK: Dequantize

    public static func dequantize(_ type: TensorType, source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        switch type {
        case .q8_0: VectorKernels.dequantizeQ8_0(source, destination, count / 32)
        case .q4_1: VectorKernels.dequantizeQ4_1(source, destination, count / 32)
        case .q4_0: VectorKernels.dequantizeQ4_0(source, destination, count / 32)
        case .f16: VectorKernels.halfToFloat(source, destination, count)
        default: ReferenceKernels.dequantize(type, source, destination, count)
        }
    }

    public static func dequantizeReference(_ type: TensorType, source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        ReferenceKernels.dequantize(type, source, destination, count)
    }

    // MARK: Quantize

    public static func quantize(_ source: UnsafePointer<Float>, count: Int, as type: TensorType, into destination: UnsafeMutableRawPointer) {
        switch type {
        case .q8_0: VectorKernels.quantizeQ8(source, destination, count / 32, withSum: false)
        case .q8_1: VectorKernels.quantizeQ8(source, destination, count / 32, withSum: true)
        case .q8_K: VectorKernels.quantizeQ8_K(source, destination, count / 256)
        default: ReferenceKernels.quantize(source, count, type, destination)
        }
    }

    public static func quantizeReference(_ source: UnsafePointer<Float>, count: Int, as type: TensorType, into destination: UnsafeMutableRawPointer) {
        ReferenceKernels.quantize(source, count, type, destination)
    }

    // MARK: Dot products

    /// Dot product of one weight row of `weightType` with one activation row already quantized to
    /// `activationType(for: weightType)`.
    public static func dot(_ weightType: TensorType, weights: UnsafeRawPointer, activation: UnsafeRawPointer, count: Int) -> Float {
        dotKernel(for: weightType)(weights, activation, count)
    }

    public static func dotReference(_ weightType: TensorType, weights: UnsafeRawPointer, activation: UnsafeRawPointer, count: Int) -> Float {
        ReferenceKernels.dot(weightType, weights, activation, count)
    }

    typealias DotKernel = @Sendable (UnsafeRawPointer, UnsafeRawPointer, Int) -> Float

    /// The vectorized dot product for `type` (the format's row: the `RowDot` kernel `matmul`
    /// specializes on); the scalar reference otherwise.
    static func dotKernel(for type: TensorType) -> DotKernel {
        if let format = QuantizedFormat.format(type) { return format.dot }
        return { weights, activation, count in ReferenceKernels.dot(type, weights, activation, count) }
    }

    // MARK: Matrix multiplication

    /// Bytes of scratch `matmul` needs to hold `tokens` quantized activation rows.
    public static func matmulScratchBytes(type: TensorType, columns: Int, tokens: Int) -> Int {
        let activation = activationType(for: type)
        let quantized = (activation.byteCount(elements: columns) ?? 0) * tokens
        if type == .q6_K {
            // AVX-512 VNNI batches over Q6_K transpose the activations into 16-token vectors.
            guard PromptKernel.detected == .avx512VNNI, tokens >= InterleavedWeights.tokenLaneMinimum else { return quantized }
            return (quantized + 63) / 64 * 64 + (tokens + 15) / 16 * (columns / 256) * Int(EMBER_Q6K_LANE_BLOCK_BYTES)
        }
        guard QuantizedFormat.format(type)?.tokenLanes == true else { return quantized }
        // Interleaved small weights multiply batches with tokens in the lanes, after a transposed
        // copy of the quantized activations (`InterleavedWeights.multiplyTokenLanes`).
        let lanes = InterleavedWeights.tokenLaneScratchBytes(columns: columns, tokens: tokens)
        return lanes == 0 ? quantized : (quantized + 63) / 64 * 64 + lanes
    }

    /// `output[t * rows + r] = dot(weight row r, input row t)` for every token t and row r.
    ///
    /// The input rows are quantized once into `scratch`; rows of the weight matrix are split across
    /// the pool, and each weight row is used for every token while it is in cache.
    ///
    /// `rowByRow`: sum F32 products as llama.cpp's one-dot-product-at-a-time path does
    /// (`ggml_vec_dot_f32`, which its `mul_mat_id` uses for experts) rather than as its tinyBLAS
    /// matmul does; the other types add up in the same order either way.
    public static func matmul(weights: UnsafeRawPointer, type: TensorType, rows: Int, columns: Int,
                              input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>,
                              scratch: UnsafeMutableRawPointer, pool: ThreadPool, rowByRow: Bool = false) {
        if !rowByRow, let kernel = FloatBatchKernel.kernel(for: type, tokens: tokens) {
            kernel.multiply(weights, type, rows, columns, input, tokens, output, pool)
            return
        }
        let activationType = activationType(for: type)
        let activationRowBytes = activationType.byteCount(elements: columns)!
        let weightRowBytes = type.byteCount(elements: columns)!
        if tokens > 1 {
            pool.parallelFor(tokens) { range, _ in
                for token in range {
                    quantize(input + token * columns, count: columns, as: activationType,
                             into: scratch + token * activationRowBytes)
                }
            }
        } else {
            quantize(input, count: columns, as: activationType, into: scratch)
        }
        let activations = UnsafeRawPointer(scratch)
        switch type {
        case .q4_0: multiplyRows(Q4_0Dot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .q4_1: multiplyRows(Q4_1Dot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .q5_0: multiplyRows(Q5_0Dot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .q5_1: multiplyRows(Q5_1Dot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .q5_K: multiplyRows(Q5_KDot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .q4_K: multiplyRows(Q4_KDot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .q6_K: multiplyRows(Q6_KDot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .q8_0: multiplyRows(Q8_0Dot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .f32 where rowByRow:
            multiplyRows(F32VectorDot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .f32: multiplyRows(F32Dot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        case .f16: multiplyRows(F16Dot.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
        default:
            let kernel = dotKernel(for: type)
            pool.parallelFor(rows) { range, _ in
                for row in range {
                    let weightRow = weights + row * weightRowBytes
                    for token in 0..<tokens {
                        output[token * rows + row] = kernel(weightRow, activations + token * activationRowBytes, columns)
                    }
                }
            }
        }
    }

    /// The row loop of `matmul`, specialized for one kernel so the dot product inlines.
    @inline(__always)
    static func multiplyRows<Kernel: RowDot>(_ kernel: Kernel.Type, _ weights: UnsafeRawPointer, _ weightRowBytes: Int, _ rows: Int,
                                            _ columns: Int, _ activations: UnsafeRawPointer, _ activationRowBytes: Int,
                                            _ tokens: Int, _ output: UnsafeMutablePointer<Float>, _ pool: ThreadPool) {
        // Tiles of tokens × the thread's rows: a tile's activation rows stay in L1 while the thread
        // walks its weight rows, and each weight row is fetched once per tile rather than once per token.
        let tokenTile = 16
        pool.parallelFor(rows) { range, _ in
            var firstToken = 0
            while firstToken < tokens {
                let lastToken = min(firstToken + tokenTile, tokens)
                for row in range {
                    let weightRow = weights + row * weightRowBytes
                    for token in firstToken..<lastToken {
                        output[token * rows + row] = Kernel.dot(weightRow, activations + token * activationRowBytes, columns)
                    }
                }
                firstToken = lastToken
            }
        }
    }

    /// `matmul` over weights interleaved at load time (see `InterleavedWeights`); `promptKernel`
    /// multiplies large batches (the same bits whichever it is).
    public static func matmul(interleaved weights: InterleavedWeights, input: UnsafePointer<Float>, tokens: Int,
                              output: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer, pool: ThreadPool,
                              promptKernel: PromptKernel = .current) {
        let columns = weights.columns
        let activationType = activationType(for: weights.type)
        let activationRowBytes = activationType.byteCount(elements: columns)!
        if tokens > 1 {
            pool.parallelFor(tokens) { range, _ in
                for token in range {
                    quantize(input + token * columns, count: columns, as: activationType, into: scratch + token * activationRowBytes)
                }
            }
        } else {
            quantize(input, count: columns, as: activationType, into: scratch)
        }
        let groups = weights.rows / InterleavedWeights.rowGroup
        if weights.type == .q6_K {
            let superBlocks = columns / 256
            if tokens >= InterleavedWeights.tokenLaneMinimum && promptKernel == .avx512VNNI
                && superBlocks <= Int(integer_kernels_q6k_max_super_blocks(Int64(ThreadPool.workspaceBytes))) {
                // Tokens in the lanes, four-byte dot products (CIntegerKernels); bit-identical.
                let lanes = scratch + (activationRowBytes * tokens + 63) / 64 * 64
                pool.parallelFor((tokens + 15) / 16) { range, _ in
                    integer_kernels_q6k_transpose_activations(scratch, Int64(activationRowBytes), Int64(superBlocks), Int64(tokens),
                                                    Int64(range.lowerBound), Int64(range.upperBound), lanes)
                }
                pool.parallelFor(groups) { range, thread in
                    integer_kernels_q6k_token_lanes_avx512_vnni(weights.storage, Int64(superBlocks), lanes, Int64(tokens), Int64(range.lowerBound),
                                                      Int64(range.upperBound), output, Int64(weights.rows), pool.workspace(thread))
                }
                return
            }
            // Tiled for batches and one token alike; bit-identical to the row kernel.
            pool.parallelFor(groups) { range, _ in
                weights.multiplyQ6_K(groups: range, activations: UnsafeRawPointer(scratch), activationRowBytes: activationRowBytes,
                                     tokens: tokens, output: output)
            }
            return
        }
        // Large batches: tokens in the lanes (bit-identical sums).
        if tokens >= InterleavedWeights.tokenLaneMinimum && weights.supportsTiles {
            precondition(promptKernel.isAvailable, "this CPU cannot run the \(promptKernel.rawValue) kernels")
            let lanes = scratch + (activationRowBytes * tokens + 63) / 64 * 64
            let blocks = columns / 32
            // The C kernel unpacks a group's weights into the thread's workspace: wider matrices
            // than it holds (over 4,800 columns) take the Swift kernel.
            let vectorNeuralNetwork = promptKernel == .avx512VNNI && blocks <= Int(integer_kernels_token_lanes_max_blocks(Int64(ThreadPool.workspaceBytes)))
            pool.parallelFor((tokens + 31) / 32) { range, _ in
                weights.transposeActivations(UnsafeRawPointer(scratch), activationRowBytes: activationRowBytes, tokens: tokens,
                                             vectors: range, quads: vectorNeuralNetwork, into: lanes)
            }
            if vectorNeuralNetwork {
                pool.parallelFor(groups) { range, thread in
                    integer_kernels_token_lanes_avx512_vnni(weights.storage, Int64(blocks), weights.type == .q4_1 ? 1 : 0, lanes, Int64(tokens),
                                                  Int64(range.lowerBound), Int64(range.upperBound), output, Int64(weights.rows),
                                                  pool.workspace(thread))
                }
                return
            }
            pool.parallelFor(groups) { range, thread in
                weights.multiplyTokenLanes(groups: range, lanes: UnsafeRawPointer(lanes), tokens: tokens, output: output,
                                           workspace: pool.workspace(thread))
            }
            return
        }
        // Batches go through the tiled kernel (bit-identical sums), the last tokens one by one.
        let tiled = weights.supportsTiles ? tokens / InterleavedWeights.tokenTile * InterleavedWeights.tokenTile : 0
        pool.parallelFor(groups) { range, _ in
            if tiled > 0 {
                weights.multiplyTiled(groups: range, activations: UnsafeRawPointer(scratch), activationRowBytes: activationRowBytes,
                                      tokens: tiled, output: output)
            }
            guard tiled < tokens else { return }
            switch weights.type {
            case .q4_1:
                weights.multiplyQ4_1(groups: range, activations: UnsafeRawPointer(scratch), activationRowBytes: activationRowBytes,
                                     tokens: tokens, firstToken: tiled, output: output)
            case .q8_0 where weights.llamaOrder:
                weights.multiplyQ8_0(groups: range, activations: UnsafeRawPointer(scratch), activationRowBytes: activationRowBytes,
                                     tokens: tokens, firstToken: tiled, output: output)
            default:
                weights.multiplyBlockSums(groups: range, activations: UnsafeRawPointer(scratch), activationRowBytes: activationRowBytes,
                                          tokens: tokens, firstToken: tiled, output: output)
            }
        }
    }

    // MARK: Half precision

    public static func float16ToFloat(_ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
        VectorKernels.halfToFloat(UnsafeRawPointer(source), destination, count)
    }

    public static func floatToFloat16(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<UInt16>, count: Int) {
        for i in 0..<count { destination[i] = Float16(source[i]).bitPattern }
    }
}

/// A dot product of one weight row with one quantized activation row, as a type so generic code
/// specializes and inlines it.
protocol RowDot {
    static func dot(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ count: Int) -> Float
}

enum Q4_0Dot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotQ4_0(weights: w, activation: a, blocks: n / 32)
    }
}

enum Q4_1Dot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotQ4_1(weights: w, activation: a, blocks: n / 32)
    }
}

enum Q8_0Dot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotQ8_0(weights: w, activation: a, blocks: n / 32)
    }
}

enum F32Dot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotF32(w, a, n)
    }
}

enum F32VectorDot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotF32VectorDot(w, a, n)
    }
}

enum F16Dot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotF16(w, a, n)
    }
}

enum Q5_0Dot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotQ5_0(weights: w, activation: a, blocks: n / 32)
    }
}

enum Q4_KDot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotQ4_K(weights: w, activation: a, blocks: n / 256)
    }
}

enum Q6_KDot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotQ6_K(weights: w, activation: a, blocks: n / 256)
    }
}

enum Q5_1Dot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotQ5_1(weights: w, activation: a, blocks: n / 32)
    }
}

enum Q5_KDot: RowDot {
    @inline(__always) static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, _ n: Int) -> Float {
        VectorKernels.dotQ5_K(weights: w, activation: a, blocks: n / 256)
    }
}
