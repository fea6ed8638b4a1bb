import EmberCore
@testable import EmberKernels
import Foundation
import Testing

@Suite("Prompt kernels: every kernel this CPU runs gives the one-token kernel's bits")
struct PromptKernelTests {
    /// Batches of ≥ `tokenLaneMinimum` tokens (one padded token vector, whole ones), Q4_1, Q4_K
    /// and decoded Q5_0; the extreme weights and activations reach the largest sums;
    /// 4,864 columns are wider than the C kernel's workspace holds (the Swift kernel takes them).
    @Test("Token-lane kernels equal the one-token kernel bit for bit",
          arguments: [(TensorType.q4_1, 70, 512, false), (.q4_1, 96, 576, false), (.q5_0, 70, 512, false), (.q4_K, 64, 512, false),
                      (.q4_1, 65, 512, true), (.q5_0, 100, 512, true), (.q4_1, 64, 4864, false)])
    func kernelsAgree(type: TensorType, tokens: Int, columns: Int, extreme: Bool) throws {
        var random = KernelRandom(state: 4242 &+ UInt64(tokens) &+ UInt64(columns))
        let rows = 64
        var weights = randomBlocks(type, elements: rows * columns, random: &random)
        var input = random.floats(tokens * columns)
        if extreme {
            setLargestQuants(&weights, type: type)
            input = input.map { $0 < 0 ? -0.5 : 0.5 }
        }
        let pool = ThreadPool(threadCount: 2)
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: type, data: $0.baseAddress!, rows: rows, columns: columns, pool: pool)
        })
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: interleaved.type, columns: columns, tokens: tokens),
                                                       alignment: 64)
        defer { scratch.deallocate() }
        var single = [Float](repeating: .nan, count: rows * tokens)
        for token in 0..<tokens {
            input.withUnsafeBufferPointer { x in
                single.withUnsafeMutableBufferPointer { y in
                    Kernels.matmul(interleaved: interleaved, input: x.baseAddress! + token * columns, tokens: 1,
                                   output: y.baseAddress! + token * rows, scratch: scratch, pool: pool)
                }
            }
        }
        let kernels = PromptKernel.allCases.filter(\.isAvailable)
        for kernel in kernels {
            var batched = [Float](repeating: .nan, count: rows * tokens)
            input.withUnsafeBufferPointer { x in
                batched.withUnsafeMutableBufferPointer { y in
                    Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!, scratch: scratch,
                                   pool: pool, promptKernel: kernel)
                }
            }
            let mismatches = (0..<(rows * tokens)).filter { batched[$0].bitPattern != single[$0].bitPattern }
            #expect(mismatches.isEmpty, "\(kernel) \(type): \(mismatches.count) outputs differ, first at \(mismatches.first ?? 0)")
        }
    }

    /// Decode steps and short batches (the tiled kernel's tokens plus one-token remainders): the C
    /// one-token kernels over Q4_1's layout, Q4_K's and Q8_0's (Q8_0 by block sums, decoded
    /// Q5_0) gives the portable kernel's bits; `extreme` fills the quants with the largest
    /// magnitudes both signs allow (−128 and 127 for Q8_0, 15 for the nibbles) to reach the
    /// largest sums and the offset the kernel takes back.
    @Test("One-token kernels equal the portable kernel bit for bit",
          arguments: [(TensorType.q4_1, 1, 576, false), (.q4_1, 5, 512, true), (.q4_K, 3, 2048, false), (.q5_0, 1, 640, false),
                      (.q5_0, 6, 640, true), (.q8_0, 1, 640, false), (.q8_0, 3, 2048, true), (.q8_0, 1, 4864, false)])
    func oneTokenKernelsAgree(type: TensorType, tokens: Int, columns: Int, extreme: Bool) throws {
        var random = KernelRandom(state: 9001 &+ UInt64(tokens) &+ UInt64(columns))
        let rows = 96
        var weights = randomBlocks(type, elements: rows * columns, random: &random)
        var input = random.floats(tokens * columns)
        if extreme {
            setLargestQuants(&weights, type: type)
            input = input.enumerated().map { $0.offset % 5 == 0 ? -0.5 : 0.5 }
        }
        let pool = ThreadPool(threadCount: 2)
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: type, data: $0.baseAddress!, rows: rows, columns: columns, pool: pool, llamaOrder: false)
        })
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: interleaved.type, columns: columns, tokens: tokens),
                                                       alignment: 64)
        defer { scratch.deallocate() }
        func product(_ kernel: PromptKernel) -> [Float] {
            var output = [Float](repeating: .nan, count: rows * tokens)
            input.withUnsafeBufferPointer { x in
                output.withUnsafeMutableBufferPointer { y in
                    Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!, scratch: scratch,
                                   pool: pool, promptKernel: kernel)
                }
            }
            return output
        }
        let portable = product(.portable)
        // The portable kernel against the float product of the dequantized weights (loosely: the
        // activations are quantized to 8 bits), so that agreeing kernels cannot both be wrong.
        var dequantized = [Float](repeating: 0, count: rows * columns)
        weights.withUnsafeBytes { w in
            dequantized.withUnsafeMutableBufferPointer { Kernels.dequantize(type, source: w.baseAddress!, into: $0.baseAddress!, count: rows * columns) }
        }
        for token in 0..<tokens {
            for row in 0..<rows {
                var exact: Float = 0, magnitude: Float = 0
                for column in 0..<columns {
                    exact += dequantized[row * columns + column] * input[token * columns + column]
                    magnitude += abs(dequantized[row * columns + column] * input[token * columns + column])
                }
                #expect(abs(portable[token * rows + row] - exact) <= 0.02 * magnitude + 1e-3, "row \(row) token \(token)")
            }
        }
        for kernel in PromptKernel.allCases.filter(\.isAvailable) {
            let output = product(kernel)
            let mismatches = (0..<(rows * tokens)).filter { output[$0].bitPattern != portable[$0].bitPattern }
            #expect(mismatches.isEmpty, "\(kernel) \(type): \(mismatches.count) outputs differ, first at \(mismatches.first ?? 0)")
        }
    }

    /// The super-block layouts (Q4_K, Q6_K) against the row kernel over the file's bytes
    /// (`VectorKernels.dotQ4_K`, llama.cpp's order, and `dotQ6_K`): one token, short batches (four
    /// tokens at a time and one-token remainders), one padded 16-token vector, whole ones, 9 super-blocks (an incomplete
    /// last four), and 4,864 columns (19 super-blocks, wider than the C kernels' workspace holds);
    /// `extreme` sets every quant, scale and minimum to its largest value.
    @Test("Super-block kernels equal the row kernel bit for bit",
          arguments: [(TensorType.q6_K, 70, 2048, false), (.q6_K, 64, 2304, false), (.q6_K, 81, 1024, false), (.q6_K, 64, 4864, false),
                      (.q4_K, 1, 1024, false), (.q4_K, 3, 2048, false), (.q4_K, 21, 1024, false), (.q4_K, 70, 2048, false), (.q4_K, 64, 2304, false),
                      (.q4_K, 1, 4864, false), (.q4_K, 64, 4864, false), (.q4_K, 1, 2048, true), (.q4_K, 66, 1024, true)])
    func superBlockKernelsAgree(type: TensorType, tokens: Int, columns: Int, extreme: Bool) throws {
        var random = KernelRandom(state: 777 &+ UInt64(tokens) &+ UInt64(columns))
        let rows = 64
        var weights = randomBlocks(type, elements: rows * columns, random: &random)
        var input = random.floats(tokens * columns)
        if extreme {
            // Q4_K: d and dmin kept, every scale, minimum and nibble at its largest.
            for b in 0..<(weights.count / Q4_KBlock.bytes) {
                for i in Q4_KBlock.scales..<Q4_KBlock.bytes { weights[b * Q4_KBlock.bytes + i] = 0xFF }
            }
            input = input.enumerated().map { $0.offset % 7 == 0 ? -0.5 : 0.5 }
        }
        let pool = ThreadPool(threadCount: 2)
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: type, data: $0.baseAddress!, rows: rows, columns: columns, pool: pool)
        })
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: type, columns: columns, tokens: tokens),
                                                       alignment: 64)
        defer { scratch.deallocate() }
        var expected = [Float](repeating: .nan, count: rows * tokens)
        weights.withUnsafeBytes { w in
            input.withUnsafeBufferPointer { x in
                expected.withUnsafeMutableBufferPointer { y in
                    Kernels.matmul(weights: w.baseAddress!, type: type, rows: rows, columns: columns, input: x.baseAddress!, tokens: tokens,
                                   output: y.baseAddress!, scratch: scratch, pool: pool)
                }
            }
        }
        for kernel in PromptKernel.allCases.filter(\.isAvailable) {
            var batched = [Float](repeating: .nan, count: rows * tokens)
            input.withUnsafeBufferPointer { x in
                batched.withUnsafeMutableBufferPointer { y in
                    Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!, scratch: scratch,
                                   pool: pool, promptKernel: kernel)
                }
            }
            let mismatches = (0..<(rows * tokens)).filter { batched[$0].bitPattern != expected[$0].bitPattern }
            #expect(mismatches.isEmpty, "\(kernel) \(type): \(mismatches.count) outputs differ, first at \(mismatches.first ?? 0)")
        }
    }

    @Test("The quad layout holds the same pairs as the pair layout, padded tokens zero")
    func quadLayout() throws {
        var random = KernelRandom(state: 31)
        let rows = 32, columns = 64, tokens = 40
        let weights = randomBlocks(.q4_1, elements: rows * columns, random: &random)
        let input = random.floats(tokens * columns)
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: .q4_1, data: $0.baseAddress!, rows: rows, columns: columns)
        })
        let rowBytes = TensorType.q8_1.byteCount(elements: columns)!
        var activations = [UInt8](repeating: 0, count: rowBytes * tokens)
        input.withUnsafeBufferPointer { x in
            activations.withUnsafeMutableBytes { a in
                for token in 0..<tokens {
                    Kernels.quantize(x.baseAddress! + token * columns, count: columns, as: .q8_1, into: a.baseAddress! + token * rowBytes)
                }
            }
        }
        let laneBytes = 2 * (columns / 32) * InterleavedWeights.tokenLaneBlockBytes
        var pairs = [UInt8](repeating: 0xAA, count: laneBytes), quads = [UInt8](repeating: 0x55, count: laneBytes)
        activations.withUnsafeBytes { a in
            pairs.withUnsafeMutableBytes {
                interleaved.transposeActivations(a.baseAddress!, activationRowBytes: rowBytes, tokens: tokens, vectors: 0..<2, into: $0.baseAddress!)
            }
            quads.withUnsafeMutableBytes {
                interleaved.transposeActivations(a.baseAddress!, activationRowBytes: rowBytes, tokens: tokens, vectors: 0..<2, quads: true,
                                                 into: $0.baseAddress!)
            }
        }
        for vector in 0..<2 {
            for block in 0..<(columns / 32) {
                let base = (vector * (columns / 32) + block) * InterleavedWeights.tokenLaneBlockBytes
                for lane in 0..<32 {
                    let token = vector * 32 + lane
                    for element in 0..<32 {
                        let quadByte = quads[base + (element / 4 * 2 + lane / 16) * 64 + (lane % 16) * 4 + element % 4]
                        let pairByte = pairs[base + (element / 2) * 64 + lane * 2 + element % 2]
                        let expected = token < tokens ? activations[token * rowBytes + block * 36 + 4 + element] : 0
                        #expect(quadByte == expected && pairByte == expected, "token \(token) element \(element)")
                    }
                }
                #expect(Array(quads[(base + 1024)..<(base + 1280)]) == Array(pairs[(base + 1024)..<(base + 1280)]))
            }
        }
    }

    @Test("The detected kernel follows the CPU's flags")
    func detection() throws {
        #if EMBER_BASELINE_CPU
        #expect(PromptKernel.detected == .portable)
        #elseif os(Linux) && arch(x86_64)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let expected: PromptKernel = flags.contains("avx512f") && flags.contains("avx512_vnni") ? .avx512VNNI : .portable
        #expect(PromptKernel.detected == expected)
        #else
        #expect(PromptKernel.detected == .portable)
        #endif
        #expect(PromptKernel.portable.isAvailable)
    }
}

/// Every quant byte of `weights` (blocks of `type`: Q4_1, Q5_0 or Q8_0) set to the largest
/// magnitudes: for Q8_0, −128 and 127 mixed; for the packed formats, every nibble and high bit set.
private func setLargestQuants(_ weights: inout [UInt8], type: TensorType) {
    let blockBytes = type.bytesPerBlock, quantStart = type == .q4_1 ? 4 : 2
    for b in 0..<(weights.count / blockBytes) {
        for i in quantStart..<blockBytes {
            weights[b * blockBytes + i] = type != .q8_0 ? 0xFF : (b + i) % 3 == 0 ? 0x80 : 0x7F
        }
    }
}
