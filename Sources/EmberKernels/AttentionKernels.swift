/// Attention over a half-precision KV cache: scores of one query against consecutive key rows, and
/// the weighted sum of consecutive value rows. Written as loops over typed pointers that LLVM
/// vectorizes (F16C/AVX-512 or NEON widening, fused multiply-adds) with the accumulators held in
/// registers; each has a scalar twin below with the same arithmetic, and the results are equal.
///
/// Both add up in the order of llama.cpp's tinyBLAS matmuls over F16 (AVX-512, no flash
/// attention): sixteen lanes of fused multiply-adds, the lanes added in halves at the end.
public enum AttentionKernels {
    /// `scores[v] = dot(query, key row v) · scale` for `count` rows `keyStride` halves apart, with the
    /// arithmetic of `Operations.dot` over widened rows: sixteen lanes of fused multiply-adds in
    /// order of the elements, then the lanes added in halves (`ElementwiseKernels.sumInHalves`).
    /// `length` must be a multiple of 16.
    public static func scoreHalfKeys(query: UnsafePointer<Float>, keys: UnsafePointer<Float16>, keyStride: Int, count: Int,
                                     length: Int, scale: Float, scores: UnsafeMutablePointer<Float>) {
        precondition(length % 16 == 0)
        let queryBytes = UnsafeRawPointer(query)
        var v = 0
        while v + 4 <= count {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            let k0 = keys + v * keyStride, k1 = k0 + keyStride, k2 = k1 + keyStride, k3 = k2 + keyStride
            var offset = 0
            while offset < length {
                let q = queryBytes.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                a0.addProduct(q, widen16(k0 + offset))
                a1.addProduct(q, widen16(k1 + offset))
                a2.addProduct(q, widen16(k2 + offset))
                a3.addProduct(q, widen16(k3 + offset))
                offset += 16
            }
            scores[v] = ElementwiseKernels.sumInHalves(a0) * scale
            scores[v + 1] = ElementwiseKernels.sumInHalves(a1) * scale
            scores[v + 2] = ElementwiseKernels.sumInHalves(a2) * scale
            scores[v + 3] = ElementwiseKernels.sumInHalves(a3) * scale
            v += 4
        }
        while v < count {
            var a0 = SIMD16<Float>()
            let k0 = keys + v * keyStride
            var offset = 0
            while offset < length {
                a0.addProduct(queryBytes.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self), widen16(k0 + offset))
                offset += 16
            }
            scores[v] = ElementwiseKernels.sumInHalves(a0) * scale
            v += 1
        }
    }

    /// Sixteen halves from `source` as floats (a loop LLVM turns into one F16C/NEON conversion;
    /// the generic SIMD conversion initializer is not vectorized).
    @inline(__always)
    static func widen16(_ source: UnsafePointer<Float16>) -> SIMD16<Float> {
        var result = SIMD16<Float>()
        withUnsafeMutableBytes(of: &result) { raw in
            let floats = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for i in 0..<16 { floats[i] = Float(source[i]) }
        }
        return result
    }

    /// The scalar twin of `scoreHalfKeys`.
    public static func scoreHalfKeysReference(query: UnsafePointer<Float>, keys: UnsafePointer<Float16>, keyStride: Int, count: Int,
                                              length: Int, scale: Float, scores: UnsafeMutablePointer<Float>) {
        for v in 0..<count {
            var lanes = [Float](repeating: 0, count: 16)
            for i in 0..<length { lanes[i % 16].addProduct(query[i], Float(keys[v * keyStride + i])) }
            scores[v] = ElementwiseKernels.sumInHalvesReference(lanes) * scale
        }
    }

    /// `output[i] = Σ_v weights[v] · value row v [i]` for `count` rows `valueStride` halves apart, in
    /// llama.cpp's order: row v is KV cell `firstCell + v`, cell c goes to lane c mod 16 (its row
    /// of cells is cut into blocks of 16 from cell 0; cells outside the visible range have weight
    /// 0 and add nothing), each lane a chain of fused multiply-adds in order of the cells, then
    /// the 16 lanes added in halves.
    public static func weightHalfValues(weights: UnsafePointer<Float>, values: UnsafePointer<Float16>, valueStride: Int, count: Int,
                                        firstCell: Int = 0, length: Int, output: UnsafeMutablePointer<Float>) {
        // 16 lanes × 16 output values: lane l's partial sums of the block of output values.
        withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: 16) { buffer in
            let lanes = buffer.baseAddress!
            var c = 0
            while c + 16 <= length {
                for l in 0..<16 { lanes[l] = .zero }
                var row = values + c
                var lane = firstCell % 16
                for v in 0..<count {
                    let value = widen16(row)
                    lanes[lane].addProduct(SIMD16(repeating: weights[v]), value)
                    row += valueStride
                    lane = lane == 15 ? 0 : lane + 1
                }
                for l in 0..<8 { lanes[l] += lanes[l + 8] }
                for l in 0..<4 { lanes[l] += lanes[l + 4] }
                for l in 0..<2 { lanes[l] += lanes[l + 2] }
                UnsafeMutableRawPointer(output + c).storeBytes(of: lanes[0] + lanes[1], as: SIMD16<Float>.self)
                c += 16
            }
            while c < length {
                var partial = SIMD16<Float>.zero
                var lane = firstCell % 16
                for v in 0..<count {
                    partial[lane].addProduct(weights[v], Float(values[v * valueStride + c]))
                    lane = lane == 15 ? 0 : lane + 1
                }
                output[c] = ElementwiseKernels.sumInHalves(partial)
                c += 1
            }
        }
    }

    /// The scalar twin of `weightHalfValues`.
    public static func weightHalfValuesReference(weights: UnsafePointer<Float>, values: UnsafePointer<Float16>, valueStride: Int,
                                                 count: Int, firstCell: Int = 0, length: Int, output: UnsafeMutablePointer<Float>) {
        for i in 0..<length {
            var lanes = [Float](repeating: 0, count: 16)
            for v in 0..<count {
                lanes[(firstCell + v) % 16].addProduct(weights[v], Float(values[v * valueStride + i]))
            }
            output[i] = ElementwiseKernels.sumInHalvesReference(lanes)
        }
    }
}
