/// Float arithmetic in the order llama.cpp's x86-64 AVX-512 build does it, so results match it
/// bit for bit: horizontal sums of vector lanes, the exponential and SiLU.
///
/// Why bit for bit: llama.cpp quantizes every matmul input to 8 bits per 32-value block, and a
/// last-bit difference upstream flips some of those roundings, which then compound layer by
/// layer. Matching the float order removes the flips at their source.
///
/// Each vector function has a scalar twin (`…Reference`) with the same operations one lane at a
/// time; tests hold them equal.
public enum ElementwiseKernels {
    // MARK: Horizontal sums

    /// Σ of 16 lanes halving the vector each step — lanes i and i + 8, then i and i + 4, then i
    /// and i + 2, then the last two — as `_mm512_reduce_add_ps` does in ggml and its tinyBLAS
    /// matmuls. (Swift's `SIMD.sum()` adds the lanes in order, which rounds differently.)
    @inlinable @inline(__always)
    public static func sumInHalves(_ vector: SIMD16<Float>) -> Float {
        sumInHalves(vector.lowHalf + vector.highHalf)
    }

    /// Σ of 8 lanes halving the vector each step, as ggml's `hsum_float_8` does.
    @inlinable @inline(__always)
    public static func sumInHalves(_ vector: SIMD8<Float>) -> Float {
        let four = vector.lowHalf + vector.highHalf
        let two = four.lowHalf + four.highHalf
        return two[0] + two[1]
    }

    /// The scalar twin of `sumInHalves` for `count` (8 or 16) lanes.
    public static func sumInHalvesReference(_ lanes: [Float]) -> Float {
        var values = lanes
        var width = values.count
        while width > 1 {
            width /= 2
            for i in 0..<width { values[i] = values[i] + values[i + width] }
        }
        return values[0]
    }

    // MARK: Exponential

    /// e^x for 16 lanes as ggml's AVX-512 `ggml_v_expf` computes it (an ARM-optimized-routines
    /// polynomial, at most ~1.5 ulp from the true value): n = round(x · log2 e), a reduced argument
    /// b = x − n · ln 2 in two fused steps, a degree-5 polynomial in b, and the result scaled by 2^n;
    /// 0 below about −133, +∞ above about 133.
    @inlinable @inline(__always)
    public static func exponential(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let shifter = SIMD16<Float>(repeating: 0x1.8p23)
        let z = shifter.addingProduct(x, SIMD16(repeating: 0x1.715476p+0))
        let n = z - shifter
        let b = (x.addingProduct(-n, SIMD16(repeating: 0x1.62e4p-1))).addingProduct(-n, SIMD16(repeating: 0x1.7f7d1cp-20))
        let u = b * b
        let high = SIMD16<Float>(repeating: 0x1.573e2ep-5).addingProduct(SIMD16(repeating: 0x1.0e4020p-7), b)
        let middle = SIMD16<Float>(repeating: 0x1.fffdb6p-2).addingProduct(SIMD16(repeating: 0x1.555e66p-3), b)
        let low = SIMD16<Float>(repeating: 1).addingProduct(SIMD16(repeating: 0x1.ffffecp-1), b)
        let polynomial = low.addingProduct(middle.addingProduct(high, u), u)
        // 2^n built from its exponent bits: z = 1.5 · 2²³ + n holds n in its low mantissa bits.
        // Exact where |n| ≤ 126; the other lanes are recomputed below.
        let exponentBits = (unsafeBitCast(z, to: SIMD16<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        var result = polynomial * unsafeBitCast(exponentBits, to: SIMD16<Float>.self)
        let magnitude = n.replacing(with: -n, where: n .< 0)
        if any(magnitude .> 126) {
            // Rare: scale in two steps where 2^n is not a normal float, lanes beyond ±192 saturate.
            for lane in 0..<16 where magnitude[lane] > 126 {
                result[lane] = exponentialScaled(polynomial[lane], n[lane])
            }
        }
        return result
    }

    /// The scalar twin of `exponential`, also what `exponential` does for one lane.
    @inlinable @inline(__always)
    public static func exponentialReference(_ x: Float) -> Float {
        let shifter: Float = 0x1.8p23
        let z = shifter.addingProduct(x, 0x1.715476p+0)
        let n = z - shifter
        let b = (x.addingProduct(-n, 0x1.62e4p-1)).addingProduct(-n, 0x1.7f7d1cp-20)
        let u = b * b
        let high = Float(0x1.573e2ep-5).addingProduct(0x1.0e4020p-7, b)
        let middle = Float(0x1.fffdb6p-2).addingProduct(0x1.555e66p-3, b)
        let low = Float(1).addingProduct(0x1.ffffecp-1, b)
        let polynomial = low.addingProduct(middle.addingProduct(high, u), u)
        return exponentialScaled(polynomial, n)
    }

    /// `polynomial · 2^n` as `_mm512_scalef_ps` computes it (one rounding, into the subnormals),
    /// or 0 / +∞ where |n| > 192 (ggml's saturation, which also turns −∞ into 0).
    @usableFromInline @inline(__always)
    static func exponentialScaled(_ polynomial: Float, _ n: Float) -> Float {
        if abs(n) > 192 || n.isNaN { return n > 0 ? .infinity : 0 }
        if n >= -126 && n <= 127 { return polynomial * Float(sign: .plus, exponent: Int(n), significand: 1) }
        if n > 127 { return polynomial * 0x1p127 * Float(sign: .plus, exponent: Int(n) - 127, significand: 1) }
        // Below the normal range, one rounding: exact in double, then rounded once to float.
        return Float(Double(polynomial) * Double(sign: .plus, exponent: Int(n), significand: 1))
    }

    // MARK: SiLU

    /// `values[i] = silu(values[i]) · multipliers[i]` for one row of `count` values, as ggml's
    /// `ggml_vec_swiglu_f32` does on AVX-512: x / (1 + e^(−x)) with `exponential` for each full
    /// 16 values, with the C library's `expf` for the rest of the row.
    public static func swiGLU(_ values: UnsafeMutablePointer<Float>, multipliers: UnsafePointer<Float>, count: Int,
                              expf: (Float) -> Float) {
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(values + i).loadUnaligned(as: SIMD16<Float>.self)
            let g = UnsafeRawPointer(multipliers + i).loadUnaligned(as: SIMD16<Float>.self)
            let silu = x / (1 + exponential(SIMD16<Float>.zero - x))
            UnsafeMutableRawPointer(values + i).storeBytes(of: silu * g, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            let x = values[i]
            values[i] = x / (1 + expf(-x)) * multipliers[i]
            i += 1
        }
    }

    /// The scalar twin of `swiGLU`.
    public static func swiGLUReference(_ values: UnsafeMutablePointer<Float>, multipliers: UnsafePointer<Float>, count: Int,
                                       expf: (Float) -> Float) {
        let vectorEnd = count / 16 * 16
        for i in 0..<count {
            let x = values[i]
            let e = i < vectorEnd ? exponentialReference(0 - x) : expf(-x)
            values[i] = x / (1 + e) * multipliers[i]
        }
    }
}
