/// Vectorized kernels written with Swift's SIMD types, which LLVM lowers to AVX-512/AVX2 on x86-64
/// and NEON on ARM. Each has a scalar twin in `ReferenceKernels`; tests hold them together.
enum VectorKernels {
    // MARK: Conversions

    @inline(__always)
    static func halfToFloat(_ source: UnsafeRawPointer, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 16 <= count {
            let halves = source.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self)
            UnsafeMutableRawPointer(output + i).storeBytes(of: SIMD16<Float>(halves), as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            output[i] = loadHalf(source, 2 * i)
            i += 1
        }
    }

    // Dequantization loops run over typed pointers (LLVM widens and vectorizes them); Swift's SIMD
    // conversions between integer widths would be lowered lane by lane.

    @inline(__always)
    static func dequantizeQ8_0(_ source: UnsafeRawPointer, _ output: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = source + b * 34
            let d = loadHalf(block, 0)
            let quants = (block + 2).assumingMemoryBound(to: Int8.self)
            let out = output + b * 32
            for j in 0..<32 { out[j] = Float(quants[j]) * d }
        }
    }

    @inline(__always)
    static func dequantizeQ4_0(_ source: UnsafeRawPointer, _ output: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = source + b * 18
            let d = loadHalf(block, 0)
            let packed = (block + 2).assumingMemoryBound(to: UInt8.self)
            let out = output + b * 32
            for j in 0..<16 {
                out[j] = Float(Int32(packed[j] & 0x0F) &- 8) * d
                out[j + 16] = Float(Int32(packed[j] >> 4) &- 8) * d
            }
        }
    }

    @inline(__always)
    static func dequantizeQ4_1(_ source: UnsafeRawPointer, _ output: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = source + b * 20
            let d = loadHalf(block, 0), m = loadHalf(block, 2)
            let packed = (block + 4).assumingMemoryBound(to: UInt8.self)
            let out = output + b * 32
            for j in 0..<16 {
                out[j] = Float(packed[j] & 0x0F) * d + m
                out[j + 16] = Float(packed[j] >> 4) * d + m
            }
        }
    }

    // MARK: Quantization of activations

    /// The largest |x[j]| for j in 0..<count (finite inputs): the maximum of the magnitudes' bit
    /// patterns, which order like the magnitudes and reduce with vector integer maxima.
    @inline(__always)
    static func largestMagnitude(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        let bits = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
        var largest: UInt32 = 0
        for j in 0..<count { largest = max(largest, bits[j] & 0x7FFF_FFFF) }
        return Float(bitPattern: largest)
    }

    /// `Int32(value.rounded(.toNearestOrEven))` for |value| < 2²², without the range check that
    /// keeps LLVM from vectorizing a loop: adding 1.5 × 2²³ leaves the rounded integer in the low
    /// mantissa bits (ggml's `nearest_int` does the same).
    @inline(__always)
    static func roundedToNearestEven(_ value: Float) -> Int32 {
        Int32(bitPattern: (value + 12_582_912).bitPattern) &- 0x4B40_0000
    }

    /// Q8_0 (and Q8_1 with `withSum`): d = max|x| / 127, q = round-half-even(x · 127 / max|x|),
    /// s = d · Σq stored as half — as ggml's x86 path computes them.
    @inline(__always)
    static func quantizeQ8(_ source: UnsafePointer<Float>, _ output: UnsafeMutableRawPointer, _ blocks: Int, withSum: Bool) {
        let blockBytes = withSum ? 36 : 34
        let quantOffset = withSum ? 4 : 2
        for b in 0..<blocks {
            let x = source + b * 32
            let amax = largestMagnitude(x, 32)
            let d = amax / 127
            let inverse: Float = amax != 0 ? 127 / amax : 0
            let block = output + b * blockBytes
            let quants = (block + quantOffset).assumingMemoryBound(to: Int8.self)
            var sum: Int32 = 0
            for j in 0..<32 {
                let q = roundedToNearestEven(x[j] * inverse)
                quants[j] = Int8(truncatingIfNeeded: q)
                sum &+= q
            }
            storeHalf(d, block, 0)
            if withSum { storeHalf(d * Float(sum), block, 2) }
        }
    }

    // MARK: Dot products
    //
    // Integer inner loops use wrapping arithmetic over typed pointers: without overflow traps LLVM
    // vectorizes them (sign-extend, multiply-add, horizontal add). Swift's SIMD conversions between
    // integer widths are lowered lane by lane, so they are avoided here.

    /// Sums `term(b)` over `blocks` with four independent accumulators, so consecutive blocks'
    /// floating-point additions do not wait on each other (a dependency chain through one scalar
    /// accumulator, four cycles per block, otherwise bounds the kernel).
    @inline(__always)
    static func sumBlocks(_ blocks: Int, _ term: (Int) -> Float) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var b = 0
        while b + 4 <= blocks {
            s0 += term(b)
            s1 += term(b + 1)
            s2 += term(b + 2)
            s3 += term(b + 3)
            b += 4
        }
        while b < blocks {
            s0 += term(b)
            b += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    @inline(__always)
    static func dotQ4_0(weights: UnsafeRawPointer, activation: UnsafeRawPointer, blocks: Int) -> Float {
        sumBlocks(blocks) { b in
            let w = weights + b * 18, a = activation + b * 34
            let packed = (w + 2).assumingMemoryBound(to: UInt8.self)
            let quants = (a + 2).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0..<16 {
                let byte = packed[j]
                isum &+= (Int32(byte & 0x0F) &- 8) &* Int32(quants[j])
                isum &+= (Int32(byte >> 4) &- 8) &* Int32(quants[j + 16])
            }
            return Float(isum) * (loadHalf(w, 0) * loadHalf(a, 0))
        }
    }

    @inline(__always)
    static func dotQ4_1(weights: UnsafeRawPointer, activation: UnsafeRawPointer, blocks: Int) -> Float {
        sumBlocks(blocks) { b in
            let w = weights + b * 20, a = activation + b * 36
            let packed = (w + 4).assumingMemoryBound(to: UInt8.self)
            let quants = (a + 4).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0..<16 {
                let byte = packed[j]
                isum &+= Int32(byte & 0x0F) &* Int32(quants[j])
                isum &+= Int32(byte >> 4) &* Int32(quants[j + 16])
            }
            return loadHalf(w, 0) * loadHalf(a, 0) * Float(isum) + loadHalf(w, 2) * loadHalf(a, 2)
        }
    }

    /// Q8_0 · Q8_0 in llama.cpp's x86 order (`ggml_vec_dot_q8_0_q8_0` and tinyBLAS alike): eight
    /// lanes, lane l the integer sum of elements 4l ..< 4l + 4 of each block, accumulated with a
    /// fused multiply-add by the block's d_w · d_a; the lanes added in halves at the end.
    @inline(__always)
    static func dotQ8_0(weights: UnsafeRawPointer, activation: UnsafeRawPointer, blocks: Int) -> Float {
        var accumulator = SIMD8<Float>.zero
        for b in 0..<blocks {
            let w = weights + b * 34, a = activation + b * 34
            let weightQuants = (w + 2).assumingMemoryBound(to: Int8.self)
            let quants = (a + 2).assumingMemoryBound(to: Int8.self)
            var lanes = SIMD8<Float>()
            for lane in 0..<8 {
                var isum: Int32 = 0
                for k in (4 * lane)..<(4 * lane + 4) { isum &+= Int32(weightQuants[k]) &* Int32(quants[k]) }
                lanes[lane] = Float(isum)
            }
            accumulator.addProduct(SIMD8(repeating: loadHalf(w, 0) * loadHalf(a, 0)), lanes)
        }
        return ElementwiseKernels.sumInHalves(accumulator)
    }

    @inline(__always)
    static func dotQ5_0(weights: UnsafeRawPointer, activation: UnsafeRawPointer, blocks: Int) -> Float {
        sumBlocks(blocks) { b in
            let w = weights + b * 22, a = activation + b * 34
            let high = w.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            let packed = (w + 6).assumingMemoryBound(to: UInt8.self)
            let quants = (a + 2).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0..<16 {
                let byte = packed[j]
                let low = Int32(byte & 0x0F) | Int32((high >> UInt32(j)) & 1) << 4
                let top = Int32(byte >> 4) | Int32((high >> UInt32(j + 16)) & 1) << 4
                isum &+= (low &- 16) &* Int32(quants[j])
                isum &+= (top &- 16) &* Int32(quants[j + 16])
            }
            return Float(isum) * (loadHalf(w, 0) * loadHalf(a, 0))
        }
    }

    @inline(__always)
    static func dotQ5_1(weights: UnsafeRawPointer, activation: UnsafeRawPointer, blocks: Int) -> Float {
        sumBlocks(blocks) { b in
            let w = weights + b * 24, a = activation + b * 36
            let high = w.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            let packed = (w + 8).assumingMemoryBound(to: UInt8.self)
            let quants = (a + 4).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for j in 0..<16 {
                let byte = packed[j]
                let low = Int32(byte & 0x0F) | Int32((high >> UInt32(j)) & 1) << 4
                let top = Int32(byte >> 4) | Int32((high >> UInt32(j + 16)) & 1) << 4
                isum &+= low &* Int32(quants[j])
                isum &+= top &* Int32(quants[j + 16])
            }
            return loadHalf(w, 0) * loadHalf(a, 0) * Float(isum) + loadHalf(w, 2) * loadHalf(a, 2)
        }
    }

    /// Q5_K · Q8_K: as Q4_K with a fifth bit per quant from `qh`.
    @inline(__always)
    static func dotQ5_K(weights: UnsafeRawPointer, activation: UnsafeRawPointer, blocks: Int) -> Float {
        sumBlocks(blocks) { b in
            let w = weights + b * Q5_KBlock.bytes, a = activation + b * Q8_KBlock.bytes
            let scales = w + Q5_KBlock.scales
            let highBits = (w + Q5_KBlock.highBits).assumingMemoryBound(to: UInt8.self)
            let packed = (w + Q5_KBlock.quants).assumingMemoryBound(to: UInt8.self)
            let quants = (a + Q8_KBlock.quants).assumingMemoryBound(to: Int8.self)
            let blockSums = (a + Q8_KBlock.sums).assumingMemoryBound(to: Int16.self)
            var isum: Int32 = 0
            var minimumSum: Int32 = 0
            for group in 0..<4 {
                let (scale0, min0) = ReferenceKernels.scaleAndMinK4(2 * group, scales)
                let (scale1, min1) = ReferenceKernels.scaleAndMinK4(2 * group + 1, scales)
                let shift0 = UInt8(2 * group), shift1 = UInt8(2 * group + 1)
                var low: Int32 = 0, high: Int32 = 0
                for l in 0..<32 {
                    let byte = packed[group * 32 + l], h = highBits[l]
                    let q0 = Int32(byte & 0x0F) | Int32((h >> shift0) & 1) << 4
                    let q1 = Int32(byte >> 4) | Int32((h >> shift1) & 1) << 4
                    low &+= q0 &* Int32(quants[group * 64 + l])
                    high &+= q1 &* Int32(quants[group * 64 + 32 + l])
                }
                isum &+= low &* Int32(scale0) &+ high &* Int32(scale1)
                minimumSum &+= Int32(min0) &* (Int32(blockSums[4 * group]) &+ Int32(blockSums[4 * group + 1]))
                minimumSum &+= Int32(min1) &* (Int32(blockSums[4 * group + 2]) &+ Int32(blockSums[4 * group + 3]))
            }
            let d = a.loadUnaligned(as: Float.self)
            return d * loadHalf(w, Q4_KBlock.scale) * Float(isum) - d * loadHalf(w, Q4_KBlock.minimumScale) * Float(minimumSum)
        }
    }

    /// Q4_K · Q8_K: per 32-element sub-block an integer sum times its 6-bit scale, minus the
    /// sub-block's 6-bit min times the activation sums (`bsums`), as ggml computes it.
    ///
    /// The float order is that of ggml's x86 kernel (`ggml_gemv_q4_K_8x8_q8_K`, the repacked
    /// layout llama.cpp gives Q4_K on AVX2/AVX-512, and its gemm): per super-block the exact integer
    /// sums (quants × 6-bit scales, Q8_K's 16-sums × mins) are fused-multiply-added into two running
    /// sums with `d · d_activation` and `dmin · d_activation`, and the second is subtracted at the end.
    @inline(__always)
    static func dotQ4_K(weights: UnsafeRawPointer, activation: UnsafeRawPointer, blocks: Int) -> Float {
        var accumulated: Float = 0, minimums: Float = 0
        for b in 0..<blocks {
            let w = weights + b * Q4_KBlock.bytes, a = activation + b * Q8_KBlock.bytes
            let scales = w + Q4_KBlock.scales
            let packed = (w + Q4_KBlock.quants).assumingMemoryBound(to: UInt8.self)
            let quants = (a + Q8_KBlock.quants).assumingMemoryBound(to: Int8.self)
            let blockSums = (a + Q8_KBlock.sums).assumingMemoryBound(to: Int16.self)
            var isum: Int32 = 0
            var minimumSum: Int32 = 0
            for group in 0..<4 {
                let (scale0, min0) = ReferenceKernels.scaleAndMinK4(2 * group, scales)
                let (scale1, min1) = ReferenceKernels.scaleAndMinK4(2 * group + 1, scales)
                var low: Int32 = 0, high: Int32 = 0
                for l in 0..<32 {
                    let byte = packed[group * 32 + l]
                    low &+= Int32(byte & 0x0F) &* Int32(quants[group * 64 + l])
                    high &+= Int32(byte >> 4) &* Int32(quants[group * 64 + 32 + l])
                }
                isum &+= low &* Int32(scale0) &+ high &* Int32(scale1)
                minimumSum &+= Int32(min0) &* (Int32(blockSums[4 * group]) &+ Int32(blockSums[4 * group + 1]))
                minimumSum &+= Int32(min1) &* (Int32(blockSums[4 * group + 2]) &+ Int32(blockSums[4 * group + 3]))
            }
            let d = a.loadUnaligned(as: Float.self)
            accumulated.addProduct(Float(isum), loadHalf(w, Q4_KBlock.scale) * d)
            minimums.addProduct(Float(minimumSum), loadHalf(w, Q4_KBlock.minimumScale) * d)
        }
        return accumulated - minimums
    }

    /// Q6_K · Q8_K: 16-element groups, each an integer sum times its 8-bit scale.
    @inline(__always)
    static func dotQ6_K(weights: UnsafeRawPointer, activation: UnsafeRawPointer, blocks: Int) -> Float {
        sumBlocks(blocks) { b in
            let w = weights + b * Q6_KBlock.bytes, a = activation + b * Q8_KBlock.bytes
            let quants = (a + Q8_KBlock.quants).assumingMemoryBound(to: Int8.self)
            let scales = (w + Q6_KBlock.scales).assumingMemoryBound(to: Int8.self)
            var isum: Int32 = 0
            for half in 0..<2 {
                let low = (w + Q6_KBlock.lowBits + half * 64).assumingMemoryBound(to: UInt8.self)
                let high = (w + Q6_KBlock.highBits + half * 32).assumingMemoryBound(to: UInt8.self)
                let y = quants + half * 128
                let scale = scales + half * 8
                for group in 0..<2 {
                    var s0: Int32 = 0, s1: Int32 = 0, s2: Int32 = 0, s3: Int32 = 0
                    for k in 0..<16 {
                        let l = group * 16 + k
                        let ql0 = low[l], ql1 = low[l + 32], qh = high[l]
                        s0 &+= (Int32((ql0 & 0x0F) | ((qh & 3) << 4)) &- 32) &* Int32(y[l])
                        s1 &+= (Int32((ql1 & 0x0F) | (((qh >> 2) & 3) << 4)) &- 32) &* Int32(y[l + 32])
                        s2 &+= (Int32((ql0 >> 4) | (((qh >> 4) & 3) << 4)) &- 32) &* Int32(y[l + 64])
                        s3 &+= (Int32((ql1 >> 4) | (((qh >> 6) & 3) << 4)) &- 32) &* Int32(y[l + 96])
                    }
                    isum &+= s0 &* Int32(scale[group]) &+ s1 &* Int32(scale[group + 2])
                    isum &+= s2 &* Int32(scale[group + 4]) &+ s3 &* Int32(scale[group + 6])
                }
            }
            return a.loadUnaligned(as: Float.self) * loadHalf(w, Q6_KBlock.scale) * Float(isum)
        }
    }

    /// Q8_K quantization of activations (ggml's `quantize_row_q8_K`): scale from the signed
    /// value of largest magnitude, round half to even, sums of each 16 quants.
    @inline(__always)
    static func quantizeQ8_K(_ source: UnsafePointer<Float>, _ output: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let x = source + b * 256, block = output + b * Q8_KBlock.bytes
            // The first value of the largest magnitude, found after a vectorized maximum.
            let amax = largestMagnitude(x, 256)
            var signedMax: Float = 0
            if amax != 0 {
                var j = 0
                while abs(x[j]) != amax { j += 1 }
                signedMax = x[j]
            }
            let quants = (block + Q8_KBlock.quants).assumingMemoryBound(to: Int8.self)
            let sums = (block + Q8_KBlock.sums).assumingMemoryBound(to: Int16.self)
            if amax == 0 {
                block.initializeMemory(as: UInt8.self, repeating: 0, count: Q8_KBlock.bytes)
                continue
            }
            let inverseScale = -127 / signedMax
            for group in 0..<16 {
                var sum: Int32 = 0
                for j in 0..<16 {
                    let q = min(127, roundedToNearestEven(inverseScale * x[group * 16 + j]))
                    quants[group * 16 + j] = Int8(truncatingIfNeeded: q)
                    sum &+= q
                }
                sums[group] = Int16(truncatingIfNeeded: sum)
            }
            block.storeBytes(of: 1 / inverseScale, as: Float.self)
        }
    }

    /// Σ w·a in llama.cpp's x86 order for F32 (AVX-512). A length that is a multiple of 16 goes
    /// through tinyBLAS there: 16 lanes of fused multiply-adds, the lanes added in halves. Any
    /// other length falls back to `ggml_vec_dot_f32` (`dotF32VectorDot`).
    @inline(__always)
    static func dotF32(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ count: Int) -> Float {
        @inline(__always) func load(_ pointer: UnsafeRawPointer, _ i: Int) -> SIMD16<Float> {
            pointer.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
        }
        if count % 16 == 0 {
            var accumulator = SIMD16<Float>.zero
            var i = 0
            while i < count {
                accumulator.addProduct(load(weights, i), load(activation, i))
                i += 16
            }
            return ElementwiseKernels.sumInHalves(accumulator)
        }
        return dotF32VectorDot(weights, activation, count)
    }

    /// Σ w·a as `ggml_vec_dot_f32` adds it up on AVX-512: four 16-lane accumulators over each 64
    /// elements, combined pairwise and added in halves, then the rest in order. GCC vectorizes that
    /// last loop's products 16 and 8 at a time (rounded, then added one by one) and fuses the
    /// multiply-add of the last (rest mod 8) elements; checked on the compiled library.
    /// llama.cpp's path for F32 rows outside tinyBLAS.
    @inline(__always)
    static func dotF32VectorDot(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ count: Int) -> Float {
        @inline(__always) func load(_ pointer: UnsafeRawPointer, _ i: Int) -> SIMD16<Float> {
            pointer.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
        }
        var sum: Float = 0
        let vectorEnd = count / 64 * 64
        if vectorEnd > 0 {
            var s0 = SIMD16<Float>.zero, s1 = s0, s2 = s0, s3 = s0
            var i = 0
            while i < vectorEnd {
                s0.addProduct(load(weights, i), load(activation, i))
                s1.addProduct(load(weights, i + 16), load(activation, i + 16))
                s2.addProduct(load(weights, i + 32), load(activation, i + 32))
                s3.addProduct(load(weights, i + 48), load(activation, i + 48))
                i += 64
            }
            sum = ElementwiseKernels.sumInHalves((s0 + s2) + (s1 + s3))
        }
        let fusedStart = count - (count - vectorEnd) % 8
        for i in vectorEnd..<fusedStart {
            sum += weights.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) * activation.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
        }
        for i in fusedStart..<count {
            sum.addProduct(weights.loadUnaligned(fromByteOffset: 4 * i, as: Float.self),
                           activation.loadUnaligned(fromByteOffset: 4 * i, as: Float.self))
        }
        return sum
    }

    /// Σ w·a over half-precision rows in tinyBLAS's order: 16 lanes of fused multiply-adds, the
    /// lanes added in halves, then any elements past the last 16 in order.
    @inline(__always)
    static func dotF16(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ count: Int) -> Float {
        var accumulator = SIMD16<Float>.zero
        var i = 0
        while i + 16 <= count {
            let w = SIMD16<Float>(weights.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self))
            let a = SIMD16<Float>(activation.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self))
            accumulator.addProduct(w, a)
            i += 16
        }
        var sum = ElementwiseKernels.sumInHalves(accumulator)
        while i < count {
            sum += loadHalf(weights, 2 * i) * loadHalf(activation, 2 * i)
            i += 1
        }
        return sum
    }
}
