/// Conversions between SIMD vectors of different element widths, written as element loops that
/// LLVM turns into single widening instructions (`vpmovsxbw`, `vpmovsxwd`, `vcvtdq2ps`,
/// `vcvtph2ps` on x86; `sxtl`, `scvtf`, `fcvtl` on ARM). The standard library's generic SIMD
/// conversion initializers run element by element instead, several times slower in the kernels.
enum Widening {
    /// 32 signed bytes at `source` as 16-bit integers.
    @inline(__always)
    static func signedBytes(_ source: UnsafeRawPointer) -> SIMD32<Int16> {
        var result = SIMD32<Int16>()
        withUnsafeMutableBytes(of: &result) { raw in
            let words = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
            let bytes = source.assumingMemoryBound(to: Int8.self)
            for i in 0..<32 { words[i] = Int16(bytes[i]) }
        }
        return result
    }

    /// The low and high nibbles of 32 bytes at `source` as 16-bit integers.
    @inline(__always)
    static func nibbles(_ source: UnsafeRawPointer) -> (low: SIMD32<Int16>, high: SIMD32<Int16>) {
        var low = SIMD32<Int16>(), high = SIMD32<Int16>()
        let bytes = source.assumingMemoryBound(to: UInt8.self)
        withUnsafeMutableBytes(of: &low) { raw in
            let words = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
            for i in 0..<32 { words[i] = Int16(bytes[i] & 0x0F) }
        }
        withUnsafeMutableBytes(of: &high) { raw in
            let words = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
            for i in 0..<32 { words[i] = Int16(bytes[i] >> 4) }
        }
        return (low, high)
    }

    /// One Q6_K block of the interleaved layout (`InterleavedWeights.interleaveQ6_K`) at 32 rows ×
    /// 32 elements: for j in 0..<8, elements j, j + 8, j + 16 and j + 24 of every row as 16-bit
    /// integers (−32…31), from packed low bytes j and j + 8 and high byte j.
    @inline(__always)
    static func q6Elements(_ block: UnsafeRawPointer, _ j: Int)
        -> (SIMD32<Int16>, SIMD32<Int16>, SIMD32<Int16>, SIMD32<Int16>) {
        var e0 = SIMD32<Int16>(), e8 = SIMD32<Int16>(), e16 = SIMD32<Int16>(), e24 = SIMD32<Int16>()
        // Layout of `InterleavedWeights.interleaveQ6_K`: 96 bytes per j.
        let first = (block + j * 96).assumingMemoryBound(to: UInt8.self)
        let second = first + 32
        let high = first + 64
        withUnsafeMutableBytes(of: &e0) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
            for i in 0..<32 { out[i] = Int16((first[i] & 0x0F) | (high[i] & 3) << 4) &- 32 }
        }
        withUnsafeMutableBytes(of: &e8) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
            for i in 0..<32 { out[i] = Int16((second[i] & 0x0F) | (high[i] >> 2 & 3) << 4) &- 32 }
        }
        withUnsafeMutableBytes(of: &e16) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
            for i in 0..<32 { out[i] = Int16((first[i] >> 4) | (high[i] >> 4 & 3) << 4) &- 32 }
        }
        withUnsafeMutableBytes(of: &e24) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
            for i in 0..<32 { out[i] = Int16((second[i] >> 4) | (high[i] >> 6) << 4) &- 32 }
        }
        return (e0, e8, e16, e24)
    }

    /// Sixteen signed bytes at `source` as 32-bit integers.
    @inline(__always)
    static func signedBytes32(_ source: UnsafeRawPointer) -> SIMD16<Int32> {
        var result = SIMD16<Int32>()
        withUnsafeMutableBytes(of: &result) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            let bytes = source.assumingMemoryBound(to: Int8.self)
            for i in 0..<16 { out[i] = Int32(bytes[i]) }
        }
        return result
    }

    /// Sixteen unsigned bytes at `source` as 32-bit integers.
    @inline(__always)
    static func unsignedBytes32(_ source: UnsafeRawPointer) -> SIMD16<Int32> {
        var result = SIMD16<Int32>()
        withUnsafeMutableBytes(of: &result) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            let bytes = source.assumingMemoryBound(to: UInt8.self)
            for i in 0..<16 { out[i] = Int32(bytes[i]) }
        }
        return result
    }

    /// For 32 lanes, `w[2i] · a[2i] + w[2i + 1] · a[2i + 1]` of unsigned weight bytes at `weights`
    /// and signed activation bytes, saturated to 16 bits: the shape LLVM lowers to one `vpmaddubsw`
    /// (the callers keep every sum far below saturation, so it is the exact sum).
    @inline(__always)
    static func pairProducts(_ weights: UnsafeRawPointer, _ activations: SIMD64<Int8>) -> SIMD32<Int16> {
        var result = SIMD32<Int16>()
        let unsigned = weights.assumingMemoryBound(to: UInt8.self)
        withUnsafeBytes(of: activations) { raw in
            let signed = raw.baseAddress!.assumingMemoryBound(to: Int8.self)
            withUnsafeMutableBytes(of: &result) { out in
                let words = out.baseAddress!.assumingMemoryBound(to: Int16.self)
                for i in 0..<32 {
                    let sum = Int32(unsigned[2 * i]) * Int32(signed[2 * i]) + Int32(unsigned[2 * i + 1]) * Int32(signed[2 * i + 1])
                    words[i] = Int16(truncatingIfNeeded: min(max(sum, -32768), 32767))
                }
            }
        }
        return result
    }

    /// The two signed bytes at `source` repeated across 64 bytes.
    @inline(__always)
    static func splatPair(_ source: UnsafeRawPointer) -> SIMD64<Int8> {
        unsafeBitCast(SIMD32<UInt16>(repeating: source.loadUnaligned(as: UInt16.self)), to: SIMD64<Int8>.self)
    }

    /// The sum of 32 signed bytes at `source`.
    @inline(__always)
    static func sum32(_ source: UnsafeRawPointer) -> Int32 {
        let bytes = source.assumingMemoryBound(to: Int8.self)
        var sum: Int32 = 0
        for i in 0..<32 { sum &+= Int32(bytes[i]) }
        return sum
    }

    /// The low and high sixteen elements of `value`, sign-extended to 32 bits.
    @inline(__always)
    static func words(_ value: SIMD32<Int16>) -> (low: SIMD16<Int32>, high: SIMD16<Int32>) {
        var low = SIMD16<Int32>(), high = SIMD16<Int32>()
        withUnsafeBytes(of: value) { source in
            let words = source.baseAddress!.assumingMemoryBound(to: Int16.self)
            withUnsafeMutableBytes(of: &low) { raw in
                let out = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
                for i in 0..<16 { out[i] = Int32(words[i]) }
            }
            withUnsafeMutableBytes(of: &high) { raw in
                let out = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
                for i in 0..<16 { out[i] = Int32(words[i + 16]) }
            }
        }
        return (low, high)
    }

    /// `value` converted to floats (exact below 2^24).
    @inline(__always)
    static func floats(_ value: SIMD16<Int32>) -> SIMD16<Float> {
        var result = SIMD16<Float>()
        withUnsafeBytes(of: value) { source in
            let integers = source.baseAddress!.assumingMemoryBound(to: Int32.self)
            withUnsafeMutableBytes(of: &result) { raw in
                let out = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                for i in 0..<16 { out[i] = Float(integers[i]) }
            }
        }
        return result
    }

    /// Sixteen halves at `source` as floats.
    @inline(__always)
    static func halves(_ source: UnsafeRawPointer) -> SIMD16<Float> {
        var result = SIMD16<Float>()
        withUnsafeMutableBytes(of: &result) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            let values = source.assumingMemoryBound(to: Float16.self)
            for i in 0..<16 { out[i] = Float(values[i]) }
        }
        return result
    }
}
