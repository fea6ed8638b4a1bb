import EmberCore

/// Row kernels that add up a dot product in exactly the order `InterleavedWeights` does — for Q4_1
/// and Q5_0 integer block sums, then one running float sum of `Float(isum) · (d · d_activation)`
/// block after block (and, for Q4_1, a separate running sum of `m · s` added last); for Q8_0
/// llama.cpp's eight lanes. A model whose weights stream
/// from the file (no rearranged copy) then produces bit-identical logits, so the same tokens.
enum SequentialDot {
    static func q4_1(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ columns: Int) -> Float {
        var accumulator: Float = 0, minimums: Float = 0
        for b in 0..<(columns / 32) {
            let w = weights + b * 20, a = activation + b * 36
            let packed = (w + 4).assumingMemoryBound(to: UInt8.self)
            let quants = (a + 4).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0..<16 {
                isum &+= Int32(packed[j] & 0x0F) &* Int32(quants[j]) &+ Int32(packed[j] >> 4) &* Int32(quants[j + 16])
            }
            accumulator += Float(isum) * (loadHalf(w, 0) * loadHalf(a, 0))
            minimums += loadHalf(w, 2) * loadHalf(a, 2)
        }
        return accumulator + minimums
    }

    /// Q8_0 in llama.cpp's order (see `VectorKernels.dotQ8_0`), as `multiplyQ8_0` sums.
    static func q8_0(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ columns: Int) -> Float {
        VectorKernels.dotQ8_0(weights: weights, activation: activation, blocks: columns / 32)
    }

    /// Q8_0 with one integer sum per block, as `multiplyBlockSums` sums.
    static func q8_0Blocks(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ columns: Int) -> Float {
        var accumulator: Float = 0
        for b in 0..<(columns / 32) {
            let w = weights + b * 34, a = activation + b * 34
            let weightQuants = (w + 2).assumingMemoryBound(to: Int8.self)
            let quants = (a + 2).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0..<32 { isum &+= Int32(weightQuants[j]) &* Int32(quants[j]) }
            accumulator += Float(isum) * (loadHalf(w, 0) * loadHalf(a, 0))
        }
        return accumulator
    }

    static func q5_0(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ columns: Int) -> Float {
        var accumulator: Float = 0
        for b in 0..<(columns / 32) {
            let w = weights + b * 22, a = activation + b * 34
            let high = w.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            let packed = (w + 6).assumingMemoryBound(to: UInt8.self)
            let quants = (a + 2).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0..<16 {
                let low = Int32(packed[j] & 0x0F | UInt8((high >> UInt32(j)) & 1) << 4) &- 16
                let upper = Int32(packed[j] >> 4 | UInt8((high >> UInt32(j + 16)) & 1) << 4) &- 16
                isum &+= low &* Int32(quants[j]) &+ upper &* Int32(quants[j + 16])
            }
            accumulator += Float(isum) * (loadHalf(w, 0) * loadHalf(a, 0))
        }
        return accumulator
    }
}

extension Kernels {
    /// Whether `matmulInInterleavedOrder` reproduces the interleaved kernels exactly for `type`
    /// (the format's `sequentialDot`).
    public static func hasInterleavedOrderKernel(_ type: TensorType) -> Bool {
        QuantizedFormat.format(type)?.sequentialDot != nil
    }

    /// `matmul(weights:…)` from the file's row layout, summed in the interleaved kernels' order
    /// (see `SequentialDot`), for types where `hasInterleavedOrderKernel`; otherwise the usual kernel.
    public static func matmulInInterleavedOrder(weights: UnsafeRawPointer, type: TensorType, rows: Int, columns: Int,
                                                input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>,
                                                scratch: UnsafeMutableRawPointer, pool: ThreadPool, rowByRow: Bool = false,
                                                llamaOrder: Bool = true) {
        MatrixKernel(type: type, inInterleavedOrder: true, llamaOrder: llamaOrder)
            .multiply(weights: weights, rows: rows, columns: columns, input: input, tokens: tokens, output: output,
                      scratch: scratch, pool: pool, rowByRow: rowByRow)
    }
}
