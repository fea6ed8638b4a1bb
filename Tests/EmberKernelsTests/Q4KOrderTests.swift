import EmberCore
import EmberKernels
import Testing

/// Q4_K · Q8_K in llama.cpp's x86 order (`ggml_gemv_q4_K_8x8_q8_K` and its gemm, the repacked layout
/// llama.cpp gives Q4_K on AVX2/AVX-512): exact integer sums per super-block, then two running fused
/// multiply-adds — `isum · (d · d_activation)` and `minimumSum · (dmin · d_activation)` — and one
/// subtraction at the end. A last-bit difference here flips roundings of the next 8-bit activations.
@Suite("Q4_K dot products in llama.cpp's order")
struct Q4KOrderTests {
    /// The recurrence written out from the blocks' bytes (ggml's `get_scale_min_k4` unpacking).
    static func expected(_ w: [UInt8], _ a: [UInt8], superBlocks: Int) -> Float {
        func half(_ bytes: [UInt8], _ offset: Int) -> Float {
            Float(Float16(bitPattern: UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8))
        }
        var accumulated: Float = 0, minimums: Float = 0
        for b in 0..<superBlocks {
            let wb = Array(w[(b * 144)..<(b * 144 + 144)]), ab = Array(a[(b * 292)..<(b * 292 + 292)])
            let q = Array(wb[4..<16])
            var isum = 0, minimumSum = 0
            for sub in 0..<8 {
                let scale = sub < 4 ? Int(q[sub] & 63) : Int(q[sub + 4] & 0x0F) | Int(q[sub - 4] >> 6) << 4
                let minimum = sub < 4 ? Int(q[sub + 4] & 63) : Int(q[sub + 4] >> 4) | Int(q[sub] >> 6) << 4
                var subSum = 0
                for l in 0..<32 {
                    let byte = wb[16 + (sub / 2) * 32 + l]
                    let quant = sub % 2 == 0 ? Int(byte & 0x0F) : Int(byte >> 4)
                    subSum += quant * Int(Int8(bitPattern: ab[4 + sub * 32 + l]))
                }
                isum += scale * subSum
                var blockSum = 0
                for k in 0..<2 {
                    let offset = 260 + 4 * sub + 2 * k
                    blockSum += Int(Int16(bitPattern: UInt16(ab[offset]) | UInt16(ab[offset + 1]) << 8))
                }
                minimumSum += minimum * blockSum
            }
            let d = Float(bitPattern: UInt32(ab[0]) | UInt32(ab[1]) << 8 | UInt32(ab[2]) << 16 | UInt32(ab[3]) << 24)
            accumulated.addProduct(Float(isum), half(wb, 0) * d)
            minimums.addProduct(Float(minimumSum), half(wb, 2) * d)
        }
        return accumulated - minimums
    }

    @Test("the SIMD kernel, its scalar twin and ggml's recurrence agree bit for bit", arguments: [1, 2, 4, 8, 11])
    func order(superBlocks: Int) {
        var random = KernelRandom(state: 4242 &+ UInt64(superBlocks))
        let count = superBlocks * 256
        let weights = randomBlocks(.q4_K, elements: count, random: &random)
        let input = random.floats(count, scale: 2)
        var activation = [UInt8](repeating: 0, count: TensorType.q8_K.byteCount(elements: count)!)
        input.withUnsafeBufferPointer { source in
            activation.withUnsafeMutableBytes { Kernels.quantize(source.baseAddress!, count: count, as: .q8_K, into: $0.baseAddress!) }
        }
        let (fast, reference) = weights.withUnsafeBytes { w in
            activation.withUnsafeBytes { a in
                (Kernels.dot(.q4_K, weights: w.baseAddress!, activation: a.baseAddress!, count: count),
                 Kernels.dotReference(.q4_K, weights: w.baseAddress!, activation: a.baseAddress!, count: count))
            }
        }
        let recurrence = Self.expected(weights, activation, superBlocks: superBlocks)
        #expect(fast.bitPattern == recurrence.bitPattern, "SIMD \(fast) vs ggml's order \(recurrence)")
        #expect(reference.bitPattern == recurrence.bitPattern, "reference \(reference) vs ggml's order \(recurrence)")
    }
}
