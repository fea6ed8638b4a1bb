/// Attention over a half-precision KV cache: scores of one query against consecutive key rows, and
/// the weighted sum of consecutive value rows. Written as loops over typed pointers that LLVM
/// vectorizes (F16C/AVX-512 or NEON widening, fused multiply-adds) with the accumulators held in
/// registers; each has a scalar twin below with the same arithmetic, and the results are equal.
public enum AttentionKernels {
    /// `scores[v] = dot(query, key row v) · scale` for `count` rows `keyStride` halves apart, with the
    /// arithmetic of `Operations.dot` over widened rows: sixteen lanes of fused multiply-adds in
    /// order of the elements, then `SIMD16.sum()`. `length` must be a multiple of 16.
    public static func scoreHalfKeys(query: UnsafePointer<Float>, keys: UnsafePointer<Float16>, keyStride: Int, count: Int,
                                     length: Int, scale: Float, scores: UnsafeMutablePointer<Float>) {
        precondition(length % 16 == 0)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { buffer in
            let accumulators = buffer.baseAddress!
            let raw = UnsafeRawPointer(accumulators)
            var v = 0
            while v + 4 <= count {
                for i in 0..<64 { accumulators[i] = 0 }
                var k0 = keys + v * keyStride, k1 = k0 + keyStride, k2 = k1 + keyStride, k3 = k2 + keyStride
                var q = query
                for _ in 0..<(length / 16) {
                    for l in 0..<16 {
                        let x = q[l]
                        accumulators[l].addProduct(x, Float(k0[l]))
                        accumulators[16 + l].addProduct(x, Float(k1[l]))
                        accumulators[32 + l].addProduct(x, Float(k2[l]))
                        accumulators[48 + l].addProduct(x, Float(k3[l]))
                    }
                    q += 16; k0 += 16; k1 += 16; k2 += 16; k3 += 16
                }
                for j in 0..<4 { scores[v + j] = raw.load(fromByteOffset: 64 * j, as: SIMD16<Float>.self).sum() * scale }
                v += 4
            }
            while v < count {
                for i in 0..<16 { accumulators[i] = 0 }
                var k0 = keys + v * keyStride
                var q = query
                for _ in 0..<(length / 16) {
                    for l in 0..<16 { accumulators[l].addProduct(q[l], Float(k0[l])) }
                    q += 16; k0 += 16
                }
                scores[v] = raw.load(as: SIMD16<Float>.self).sum() * scale
                v += 1
            }
        }
    }

    /// The scalar twin of `scoreHalfKeys`.
    public static func scoreHalfKeysReference(query: UnsafePointer<Float>, keys: UnsafePointer<Float16>, keyStride: Int, count: Int,
                                              length: Int, scale: Float, scores: UnsafeMutablePointer<Float>) {
        for v in 0..<count {
            var lanes = SIMD16<Float>.zero
            for i in 0..<length { lanes[i % 16].addProduct(query[i], Float(keys[v * keyStride + i])) }
            scores[v] = lanes.sum() * scale
        }
    }

    /// `output[i] = Σ_v weights[v] · value row v [i]` for `count` rows `valueStride` halves apart,
    /// summed in order of v with a multiply then an add (no fusion), as the scalar loop does.
    public static func weightHalfValues(weights: UnsafePointer<Float>, values: UnsafePointer<Float16>, valueStride: Int, count: Int,
                                        length: Int, output: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { buffer in
            let accumulators = buffer.baseAddress!
            var c = 0
            while c + 64 <= length {
                for i in 0..<64 { accumulators[i] = 0 }
                var row = values + c
                for v in 0..<count {
                    let w = weights[v]
                    for i in 0..<64 { accumulators[i] += w * Float(row[i]) }
                    row += valueStride
                }
                for i in 0..<64 { output[c + i] = accumulators[i] }
                c += 64
            }
            while c < length {
                var sum: Float = 0
                var row = values + c
                for v in 0..<count {
                    sum += weights[v] * Float(row[0])
                    row += valueStride
                }
                output[c] = sum
                c += 1
            }
        }
    }

    /// The scalar twin of `weightHalfValues`.
    public static func weightHalfValuesReference(weights: UnsafePointer<Float>, values: UnsafePointer<Float16>, valueStride: Int,
                                                 count: Int, length: Int, output: UnsafeMutablePointer<Float>) {
        for i in 0..<length { output[i] = 0 }
        for v in 0..<count {
            for i in 0..<length { output[i] += weights[v] * Float(values[v * valueStride + i]) }
        }
    }
}
