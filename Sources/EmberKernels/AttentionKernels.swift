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

    /// `scores[q · scoreStride + v] = dot(query q, key row v) · scale` for `queryCount` queries
    /// (`length` floats apart) that share their keys — the query heads of one key-value head, as
    /// grouped-query attention has them. Each score has `scoreHalfKeys`'s arithmetic, to the bit;
    /// blocks of four queries × four keys widen each key once for four queries and add up the
    /// sixteen lane sets together (`sumsInHalves`). `length` must be a multiple of 16.
    public static func scoreHalfKeys(queries: UnsafePointer<Float>, queryCount: Int, keys: UnsafePointer<Float16>, keyStride: Int,
                                     count: Int, length: Int, scale: Float, scores: UnsafeMutablePointer<Float>, scoreStride: Int) {
        precondition(length % 16 == 0)
        var first = 0
        while first < queryCount {
            let active = min(4, queryCount - first)
            if active == 1 {
                scoreHalfKeys(query: queries + first * length, keys: keys, keyStride: keyStride, count: count, length: length,
                              scale: scale, scores: scores + first * scoreStride)
                break
            }
            // A block of fewer than four queries repeats its last one; the repeat's scores are not stored.
            let q0 = UnsafeRawPointer(queries + first * length), q1 = UnsafeRawPointer(queries + (first + 1) * length)
            let q2 = UnsafeRawPointer(queries + (first + min(2, active - 1)) * length)
            let q3 = UnsafeRawPointer(queries + (first + min(3, active - 1)) * length)
            let rows = scores + first * scoreStride
            var v = 0
            while v + 4 <= count {
                var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>(), a03 = SIMD16<Float>()
                var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>(), a13 = SIMD16<Float>()
                var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a22 = SIMD16<Float>(), a23 = SIMD16<Float>()
                var a30 = SIMD16<Float>(), a31 = SIMD16<Float>(), a32 = SIMD16<Float>(), a33 = SIMD16<Float>()
                let k0 = keys + v * keyStride, k1 = k0 + keyStride, k2 = k1 + keyStride, k3 = k2 + keyStride
                var offset = 0
                while offset < length {
                    let w0 = widen16(k0 + offset), w1 = widen16(k1 + offset), w2 = widen16(k2 + offset), w3 = widen16(k3 + offset)
                    let x0 = q0.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                    a00.addProduct(x0, w0); a01.addProduct(x0, w1); a02.addProduct(x0, w2); a03.addProduct(x0, w3)
                    let x1 = q1.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                    a10.addProduct(x1, w0); a11.addProduct(x1, w1); a12.addProduct(x1, w2); a13.addProduct(x1, w3)
                    let x2 = q2.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                    a20.addProduct(x2, w0); a21.addProduct(x2, w1); a22.addProduct(x2, w2); a23.addProduct(x2, w3)
                    let x3 = q3.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                    a30.addProduct(x3, w0); a31.addProduct(x3, w1); a32.addProduct(x3, w2); a33.addProduct(x3, w3)
                    offset += 16
                }
                let sums = sumsInHalves(halves8(a00, a01), halves8(a02, a03), halves8(a10, a11), halves8(a12, a13),
                                        halves8(a20, a21), halves8(a22, a23), halves8(a30, a31), halves8(a32, a33)) * scale
                for q in 0..<active {
                    UnsafeMutableRawPointer(rows + q * scoreStride + v).storeBytes(of: sums.quarter(q), as: SIMD4<Float>.self)
                }
                v += 4
            }
            if v < count {
                for q in 0..<active {
                    scoreHalfKeys(query: queries + (first + q) * length, keys: keys + v * keyStride, keyStride: keyStride,
                                  count: count - v, length: length, scale: scale, scores: rows + q * scoreStride + v)
                }
            }
            first += active
        }
    }

    /// The first step of `ElementwiseKernels.sumInHalves` for two vectors at once: lanes 0–7 hold
    /// `a`'s low half plus its high half, lanes 8–15 `b`'s.
    @inline(__always)
    static func halves8(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        SIMD16(lowHalf: a.lowHalf, highHalf: b.lowHalf) + SIMD16(lowHalf: a.highHalf, highHalf: b.highHalf)
    }

    /// The sums in halves of sixteen vectors, given after their first step (`halves8`, two per
    /// argument): lane i is `ElementwiseKernels.sumInHalves` of the i-th, to the bit — the same
    /// additions of the same pairs, done for several vectors in one instruction.
    @inline(__always)
    static func sumsInHalves(_ y0: SIMD16<Float>, _ y1: SIMD16<Float>, _ y2: SIMD16<Float>, _ y3: SIMD16<Float>,
                             _ y4: SIMD16<Float>, _ y5: SIMD16<Float>, _ y6: SIMD16<Float>, _ y7: SIMD16<Float>) -> SIMD16<Float> {
        // Groups of 8 lanes → their 4-lane sums: low quarters of each half plus high quarters.
        @inline(__always) func halves4(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(lowHalf: SIMD8(lowHalf: a.lowHalf.lowHalf, highHalf: a.highHalf.lowHalf),
                   highHalf: SIMD8(lowHalf: b.lowHalf.lowHalf, highHalf: b.highHalf.lowHalf))
                + SIMD16(lowHalf: SIMD8(lowHalf: a.lowHalf.highHalf, highHalf: a.highHalf.highHalf),
                         highHalf: SIMD8(lowHalf: b.lowHalf.highHalf, highHalf: b.highHalf.highHalf))
        }
        // Groups of 4 lanes → their 2-lane sums: the even pairs of lanes plus the odd pairs.
        @inline(__always) func halves2(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
            let pairsA = unsafeBitCast(a, to: SIMD8<UInt64>.self), pairsB = unsafeBitCast(b, to: SIMD8<UInt64>.self)
            return unsafeBitCast(SIMD8(lowHalf: pairsA.evenHalf, highHalf: pairsB.evenHalf), to: SIMD16<Float>.self)
                + unsafeBitCast(SIMD8(lowHalf: pairsA.oddHalf, highHalf: pairsB.oddHalf), to: SIMD16<Float>.self)
        }
        let w0 = halves2(halves4(y0, y1), halves4(y2, y3)), w1 = halves2(halves4(y4, y5), halves4(y6, y7))
        return SIMD16(lowHalf: w0.evenHalf, highHalf: w1.evenHalf) + SIMD16(lowHalf: w0.oddHalf, highHalf: w1.oddHalf)
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
        // 16 lanes × 16 output values: lane l's partial sums of the block of output values. Whole
        // cycles of 16 cells run with the lanes in registers.
        withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: 16) { buffer in
            let lanes = buffer.baseAddress!
            let lead = firstCell % 16
            let leading = min(count, lead == 0 ? 0 : 16 - lead)
            let cycles = (count - leading) / 16
            var c = 0
            while c + 16 <= length {
                var row = values + c
                var l0 = SIMD16<Float>(), l1 = l0, l2 = l0, l3 = l0, l4 = l0, l5 = l0, l6 = l0, l7 = l0
                var l8 = l0, l9 = l0, l10 = l0, l11 = l0, l12 = l0, l13 = l0, l14 = l0, l15 = l0
                if leading > 0 {
                    for l in 0..<16 { lanes[l] = .zero }
                    for v in 0..<leading {
                        lanes[lead + v].addProduct(SIMD16(repeating: weights[v]), widen16(row))
                        row += valueStride
                    }
                    l0 = lanes[0]; l1 = lanes[1]; l2 = lanes[2]; l3 = lanes[3]; l4 = lanes[4]; l5 = lanes[5]
                    l6 = lanes[6]; l7 = lanes[7]; l8 = lanes[8]; l9 = lanes[9]; l10 = lanes[10]; l11 = lanes[11]
                    l12 = lanes[12]; l13 = lanes[13]; l14 = lanes[14]; l15 = lanes[15]
                }
                var w = weights + leading
                let s = valueStride
                for _ in 0..<cycles {
                    l0.addProduct(SIMD16(repeating: w[0]), widen16(row))
                    l1.addProduct(SIMD16(repeating: w[1]), widen16(row + s))
                    l2.addProduct(SIMD16(repeating: w[2]), widen16(row + 2 * s))
                    l3.addProduct(SIMD16(repeating: w[3]), widen16(row + 3 * s))
                    l4.addProduct(SIMD16(repeating: w[4]), widen16(row + 4 * s))
                    l5.addProduct(SIMD16(repeating: w[5]), widen16(row + 5 * s))
                    l6.addProduct(SIMD16(repeating: w[6]), widen16(row + 6 * s))
                    l7.addProduct(SIMD16(repeating: w[7]), widen16(row + 7 * s))
                    l8.addProduct(SIMD16(repeating: w[8]), widen16(row + 8 * s))
                    l9.addProduct(SIMD16(repeating: w[9]), widen16(row + 9 * s))
                    l10.addProduct(SIMD16(repeating: w[10]), widen16(row + 10 * s))
                    l11.addProduct(SIMD16(repeating: w[11]), widen16(row + 11 * s))
                    l12.addProduct(SIMD16(repeating: w[12]), widen16(row + 12 * s))
                    l13.addProduct(SIMD16(repeating: w[13]), widen16(row + 13 * s))
                    l14.addProduct(SIMD16(repeating: w[14]), widen16(row + 14 * s))
                    l15.addProduct(SIMD16(repeating: w[15]), widen16(row + 15 * s))
                    row += 16 * s
                    w += 16
                }
                // The cells after the last whole cycle go to lanes 0, 1, … in order.
                let trailing = count - leading - 16 * cycles
                if trailing > 0 {
                    lanes[0] = l0; lanes[1] = l1; lanes[2] = l2; lanes[3] = l3; lanes[4] = l4; lanes[5] = l5
                    lanes[6] = l6; lanes[7] = l7; lanes[8] = l8; lanes[9] = l9; lanes[10] = l10; lanes[11] = l11
                    lanes[12] = l12; lanes[13] = l13; lanes[14] = l14
                    for t in 0..<trailing {
                        lanes[t].addProduct(SIMD16(repeating: w[t]), widen16(row))
                        row += valueStride
                    }
                    l0 = lanes[0]; l1 = lanes[1]; l2 = lanes[2]; l3 = lanes[3]; l4 = lanes[4]; l5 = lanes[5]
                    l6 = lanes[6]; l7 = lanes[7]; l8 = lanes[8]; l9 = lanes[9]; l10 = lanes[10]; l11 = lanes[11]
                    l12 = lanes[12]; l13 = lanes[13]; l14 = lanes[14]
                }
                // The 16 lanes added in halves.
                let a0 = l0 + l8, a1 = l1 + l9, a2 = l2 + l10, a3 = l3 + l11, a4 = l4 + l12, a5 = l5 + l13, a6 = l6 + l14, a7 = l7 + l15
                let b0 = a0 + a4, b1 = a1 + a5, b2 = a2 + a6, b3 = a3 + a7
                let d0 = b0 + b2, d1 = b1 + b3
                UnsafeMutableRawPointer(output + c).storeBytes(of: d0 + d1, as: SIMD16<Float>.self)
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

extension SIMD16 where Scalar == Float {
    /// Lanes 4q ..< 4q + 4.
    @inline(__always)
    func quarter(_ q: Int) -> SIMD4<Float> {
        switch q {
        case 0: lowHalf.lowHalf
        case 1: lowHalf.highHalf
        case 2: highHalf.lowHalf
        default: highHalf.highHalf
        }
    }
}
