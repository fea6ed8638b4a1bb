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

    typealias DequantizeKernel = @Sendable (_ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ count: Int) -> Void

    /// `count` elements of `type` widened to floats: the format's vectorized kernel where its row
    /// has one, the scalar reference otherwise.
    public static func dequantize(_ type: TensorType, source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        if let kernel = QuantizedFormat.format(type)?.dequantize {
            kernel(source, destination, count)
        } else {
            ReferenceKernels.dequantize(type, source, destination, count)
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

    /// The vectorized dot product for `type` (the format's row); the scalar reference otherwise.
    static func dotKernel(for type: TensorType) -> DotKernel {
        if let format = QuantizedFormat.format(type) { return format.dot }
        return { weights, activation, count in ReferenceKernels.dot(type, weights, activation, count) }
    }

    // MARK: Matrix multiplication

    /// Bytes of scratch `matmul` needs to hold `tokens` quantized activation rows, and the
    /// format's token vectors for batches (`QuantizedFormat.laneScratchBytes`) after them.
    public static func matmulScratchBytes(type: TensorType, columns: Int, tokens: Int) -> Int {
        let quantized = (activationType(for: type).byteCount(elements: columns) ?? 0) * tokens
        let lanes = QuantizedFormat.format(type)?.laneScratchBytes(columns, tokens) ?? 0
        return lanes == 0 ? quantized : laneScratchOffset(quantized) + lanes
    }

    /// Where the token vectors start in `matmul`'s scratch: after the quantized activations, aligned to 64 bytes.
    static func laneScratchOffset(_ quantizedBytes: Int) -> Int { (quantizedBytes + 63) / 64 * 64 }

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
        quantizeActivations(input, tokens: tokens, columns: columns, as: activationType, into: scratch, pool: pool)
        let activations = UnsafeRawPointer(scratch)
        let weightRowBytes = type.byteCount(elements: columns)!
        guard let format = QuantizedFormat.format(type) else {
            multiplyRows(dotKernel(for: type), weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
            return
        }
        let loop = rowByRow ? format.multiplyRowsOneByOne : format.multiplyRows
        loop(weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
    }

    /// Quantizes `tokens` rows of `columns` floats to `type`, rows `type.byteCount(columns)` apart
    /// (a batch on the pool).
    static func quantizeActivations(_ input: UnsafePointer<Float>, tokens: Int, columns: Int, as type: TensorType,
                                    into scratch: UnsafeMutableRawPointer, pool: ThreadPool) {
        let rowBytes = type.byteCount(elements: columns)!
        if tokens > 1 {
            pool.parallelFor(tokens) { range, _ in
                for token in range {
                    quantize(input + token * columns, count: columns, as: type, into: scratch + token * rowBytes)
                }
            }
        } else {
            quantize(input, count: columns, as: type, into: scratch)
        }
    }

    /// `matmul`'s loop over rows of the file's layout, for one format.
    typealias RowLoop = @Sendable (_ weights: UnsafeRawPointer, _ weightRowBytes: Int, _ rows: Int, _ columns: Int,
                                   _ activations: UnsafeRawPointer, _ activationRowBytes: Int, _ tokens: Int,
                                   _ output: UnsafeMutablePointer<Float>, _ pool: ThreadPool) -> Void

    /// The row loop specialized for `kernel` (the dot product inlines in it).
    static func rowLoop<Kernel: RowDot>(_ kernel: Kernel.Type) -> RowLoop {
        { weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool in
            multiplyRows(Kernel.self, weights, weightRowBytes, rows, columns, activations, activationRowBytes, tokens, output, pool)
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

    /// The row loop over a dot product known only at run time (the scalar reference of a type
    /// outside the table, the streamed order's kernels): every token of a row in turn.
    static func multiplyRows(_ kernel: DotKernel, _ weights: UnsafeRawPointer, _ weightRowBytes: Int, _ rows: Int,
                             _ columns: Int, _ activations: UnsafeRawPointer, _ activationRowBytes: Int,
                             _ tokens: Int, _ output: UnsafeMutablePointer<Float>, _ pool: ThreadPool) {
        pool.parallelFor(rows) { range, _ in
            for row in range {
                let weightRow = weights + row * weightRowBytes
                for token in 0..<tokens {
                    output[token * rows + row] = kernel(weightRow, activations + token * activationRowBytes, columns)
                }
            }
        }
    }

    /// One token through several matrices of the same input, each rearranged at load
    /// (`InterleavedWeights`): when they share their columns and activation type, the input is
    /// quantized once and every matrix's groups are handed out in one dispatch, so a decode step
    /// synchronises its threads once for all of them (the same bits as one `matmul` each), and the
    /// call returns true; otherwise it does nothing and returns false.
    public static func matmulOneToken(_ parts: [(weights: InterleavedWeights, output: UnsafeMutablePointer<Float>)],
                                      input: UnsafePointer<Float>, scratch: UnsafeMutableRawPointer, pool: ThreadPool,
                                      promptKernel: PromptKernel = .current) -> Bool {
        guard let first = parts.first?.weights else { return false }
        let activation = activationType(for: first.type)
        var total = 0
        for part in parts {
            guard part.weights.columns == first.columns, activationType(for: part.weights.type) == activation else { return false }
            total += part.weights.rows / InterleavedWeights.rowGroup
        }
        quantize(input, count: first.columns, as: activation, into: scratch)
        let activations = UnsafeRawPointer(scratch)
        pool.parallelFor(total, grain: max(1, total / (8 * pool.threadCount))) { range, thread in
            var start = 0
            for part in parts {
                let end = start + part.weights.rows / InterleavedWeights.rowGroup
                let lower = max(range.lowerBound, start), upper = min(range.upperBound, end)
                if lower < upper {
                    part.weights.oneToken(part.weights, (lower - start)..<(upper - start), activations, part.output, promptKernel,
                                          pool.workspace(thread))
                }
                start = end
            }
        }
        return true
    }

    /// `matmul` over weights interleaved at load time (see `InterleavedWeights`): the activations
    /// quantized, then the product the weights resolved when they were rearranged.
    /// `promptKernel` multiplies large batches, and single tokens over Q4_1's and Q8_0's layouts
    /// when it is AVX-512 VNNI and the CPU has byte permutes (the same bits whichever it is).
    public static func matmul(interleaved weights: InterleavedWeights, input: UnsafePointer<Float>, tokens: Int,
                              output: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer, pool: ThreadPool,
                              promptKernel: PromptKernel = .current) {
        let activationType = activationType(for: weights.type)
        quantizeActivations(input, tokens: tokens, columns: weights.columns, as: activationType, into: scratch, pool: pool)
        let product = InterleavedWeights.Product(activations: UnsafeRawPointer(scratch),
                                                 activationRowBytes: activationType.byteCount(elements: weights.columns)!,
                                                 tokens: tokens, output: output, scratch: scratch, pool: pool, promptKernel: promptKernel)
        weights.multiply(weights, product)
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
protocol RowDot: SendableMetatype {
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
