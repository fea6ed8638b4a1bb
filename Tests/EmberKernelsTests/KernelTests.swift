import EmberCore
import Foundation
import EmberKernels
import Testing

struct KernelRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
    mutating func floats(_ count: Int, scale: Float = 1) -> [Float] { (0..<count).map { _ in unit() * scale } }
}

/// Random but valid blocks of `type`: quantized from random floats where Ember has a quantizer,
/// otherwise random bytes with small finite half-precision scales.
func randomBlocks(_ type: TensorType, elements: Int, random: inout KernelRandom) -> [UInt8] {
    let byteCount = type.byteCount(elements: elements)!
    var bytes = [UInt8](repeating: 0, count: byteCount)
    switch type {
    case .f32, .f16, .q4_0, .q4_1, .q5_0, .q8_0:
        let values = random.floats(elements, scale: 2)
        values.withUnsafeBufferPointer { source in
            bytes.withUnsafeMutableBytes { Kernels.quantizeReference(source.baseAddress!, count: elements, as: type, into: $0.baseAddress!) }
        }
    default:
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: random.next()) }
        let blocks = elements / type.blockSize
        func half(_ value: Float, _ offset: Int) {
            let bits = Float16(value).bitPattern
            bytes[offset] = UInt8(bits & 0xFF)
            bytes[offset + 1] = UInt8(bits >> 8)
        }
        for b in 0..<blocks {
            let base = b * type.bytesPerBlock
            switch type {
            case .q5_1: half(0.01 + 0.02 * abs(random.unit()), base); half(random.unit() * 0.1, base + 2)
            case .q4_K, .q5_K: half(0.01 + 0.02 * abs(random.unit()), base); half(0.01 * abs(random.unit()), base + 2)
            case .q6_K: half(0.01 + 0.02 * abs(random.unit()), base + 208)
            default: break
            }
        }
    }
    return bytes
}


/// `rows × tokens` outputs computed row by row with the scalar reference kernels.
func referenceMatmul(_ type: TensorType, weights: [UInt8], rows: Int, columns: Int, input: [Float], tokens: Int) -> [Float] {
    let activationType = Kernels.activationType(for: type)
    let rowBytes = type.byteCount(elements: columns)!
    var output = [Float](repeating: 0, count: rows * tokens)
    for token in 0..<tokens {
        var activation = [UInt8](repeating: 0, count: activationType.byteCount(elements: columns)!)
        input.withUnsafeBufferPointer { x in
            activation.withUnsafeMutableBytes {
                Kernels.quantizeReference(x.baseAddress! + token * columns, count: columns, as: activationType, into: $0.baseAddress!)
            }
        }
        for row in 0..<rows {
            output[token * rows + row] = weights.withUnsafeBytes { w in
                activation.withUnsafeBytes { a in
                    Kernels.dotReference(type, weights: w.baseAddress! + row * rowBytes, activation: a.baseAddress!, count: columns)
                }
            }
        }
    }
    return output
}

@Suite("Kernels: SIMD versions agree with the scalar references")
struct KernelTests {
    static let weightTypes: [TensorType] = [.f32, .f16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K]

    @Test("Dequantization is exact", arguments: weightTypes)
    func dequantize(type: TensorType) {
        var random = KernelRandom(state: UInt64(type.rawValue) &+ 1)
        let count = 1024
        let blocks = randomBlocks(type, elements: count, random: &random)
        var fast = [Float](repeating: 0, count: count), reference = [Float](repeating: 1, count: count)
        blocks.withUnsafeBytes { raw in
            fast.withUnsafeMutableBufferPointer { Kernels.dequantize(type, source: raw.baseAddress!, into: $0.baseAddress!, count: count) }
            reference.withUnsafeMutableBufferPointer { Kernels.dequantizeReference(type, source: raw.baseAddress!, into: $0.baseAddress!, count: count) }
        }
        #expect(fast == reference)
        #expect(reference.allSatisfy { $0.isFinite })
    }

    @Test("Activation quantization matches the reference", arguments: [TensorType.q8_0, .q8_1, .q8_K, .f16])
    func quantizeActivations(type: TensorType) {
        var random = KernelRandom(state: 99 &+ UInt64(type.rawValue))
        let count = 2048
        var values = random.floats(count, scale: 3)
        values[7] = 0
        values[300..<556] = ArraySlice(repeating: 0, count: 256)  // an all-zero block
        var fast = [UInt8](repeating: 0, count: type.byteCount(elements: count)!)
        var reference = [UInt8](repeating: 1, count: fast.count)
        values.withUnsafeBufferPointer { source in
            fast.withUnsafeMutableBytes { Kernels.quantize(source.baseAddress!, count: count, as: type, into: $0.baseAddress!) }
            reference.withUnsafeMutableBytes { Kernels.quantizeReference(source.baseAddress!, count: count, as: type, into: $0.baseAddress!) }
        }
        #expect(fast == reference)
    }

    @Test("Activation quantization matches the reference on ties", arguments: [TensorType.q8_0, .q8_1, .q8_K])
    func quantizeTies(type: TensorType) {
        // Equal magnitudes of both signs (the first decides Q8_K's sign) and values that land on
        // halves once scaled (rounded to even).
        let count = 1024
        var values = (0..<count).map { Float(($0 * 37) % 255) - 127 }
        for j in stride(from: 256, to: 512, by: 2) { values[j] = -values[j] }
        for j in 512..<768 { values[j] = Float(j % 9) * 0.5 - 2 }
        values[768] = 127  // then a later -127
        values[900] = -127
        var fast = [UInt8](repeating: 0, count: type.byteCount(elements: count)!)
        var reference = [UInt8](repeating: 1, count: fast.count)
        values.withUnsafeBufferPointer { source in
            fast.withUnsafeMutableBytes { Kernels.quantize(source.baseAddress!, count: count, as: type, into: $0.baseAddress!) }
            reference.withUnsafeMutableBytes { Kernels.quantizeReference(source.baseAddress!, count: count, as: type, into: $0.baseAddress!) }
        }
        #expect(fast == reference)
    }

    @Test("Dot products agree with the reference and with dequantized arithmetic", arguments: weightTypes)
    func dot(type: TensorType) {
        var random = KernelRandom(state: 1234 &+ UInt64(type.rawValue))
        let count = 1536
        let weights = randomBlocks(type, elements: count, random: &random)
        let input = random.floats(count)
        let activationType = Kernels.activationType(for: type)
        var activation = [UInt8](repeating: 0, count: activationType.byteCount(elements: count)!)
        input.withUnsafeBufferPointer { source in
            activation.withUnsafeMutableBytes { Kernels.quantizeReference(source.baseAddress!, count: count, as: activationType, into: $0.baseAddress!) }
        }
        var dequantized = [Float](repeating: 0, count: count)
        weights.withUnsafeBytes { raw in
            dequantized.withUnsafeMutableBufferPointer { Kernels.dequantizeReference(type, source: raw.baseAddress!, into: $0.baseAddress!, count: count) }
        }
        let (fast, reference) = weights.withUnsafeBytes { w in
            activation.withUnsafeBytes { a in
                (Kernels.dot(type, weights: w.baseAddress!, activation: a.baseAddress!, count: count),
                 Kernels.dotReference(type, weights: w.baseAddress!, activation: a.baseAddress!, count: count))
            }
        }
        let exact = zip(dequantized, input).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let magnitude = zip(dequantized, input).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
        #expect(abs(Double(fast - reference)) <= 1e-4 * max(magnitude, 1), "\(type): SIMD \(fast) vs reference \(reference)")
        // Activation quantization to 8 bits costs about 1% of the magnitude; F32 none.
        let tolerance = activationType == .f32 ? 1e-4 : 0.02
        #expect(abs(Double(fast) - exact) <= tolerance * max(magnitude, 1), "\(type): \(fast) vs exact \(exact)")
    }

    @Test("Matrix multiplication equals row-by-row dot products", arguments: [TensorType.q4_0, .q4_1, .q8_0, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K, .f16, .f32], [1, 2, 3])
    func matmul(type: TensorType, threads: Int) {
        var random = KernelRandom(state: 77 &+ UInt64(threads))
        let rows = 37, columns = 512, tokens = 5
        let weights = randomBlocks(type, elements: rows * columns, random: &random)
        let input = random.floats(tokens * columns)
        let pool = ThreadPool(threadCount: threads)
        var output = [Float](repeating: .nan, count: rows * tokens)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: type, columns: columns, tokens: tokens), alignment: 64)
        defer { scratch.deallocate() }
        weights.withUnsafeBytes { w in
            input.withUnsafeBufferPointer { x in
                output.withUnsafeMutableBufferPointer { y in
                    Kernels.matmul(weights: w.baseAddress!, type: type, rows: rows, columns: columns, input: x.baseAddress!,
                                   tokens: tokens, output: y.baseAddress!, scratch: scratch, pool: pool)
                }
            }
        }
        let reference = referenceMatmul(type, weights: weights, rows: rows, columns: columns, input: input, tokens: tokens)
        for token in 0..<tokens {
            for row in 0..<rows {
                let expected = reference[token * rows + row]
                let got = output[token * rows + row]
                #expect(abs(got - expected) <= 1e-3 * max(abs(expected), 1), "\(type) row \(row) token \(token)")
            }
        }
    }

    @Test("Weight quantizers round-trip within their step", arguments: [TensorType.q4_0, .q4_1, .q5_0, .q8_0, .f16])
    func weightRoundTrip(type: TensorType) {
        var random = KernelRandom(state: 5)
        let count = 4096
        let values = random.floats(count)
        var blocks = [UInt8](repeating: 0, count: type.byteCount(elements: count)!)
        var back = [Float](repeating: 0, count: count)
        values.withUnsafeBufferPointer { source in
            blocks.withUnsafeMutableBytes { Kernels.quantizeReference(source.baseAddress!, count: count, as: type, into: $0.baseAddress!) }
        }
        blocks.withUnsafeBytes { raw in
            back.withUnsafeMutableBufferPointer { Kernels.dequantize(type, source: raw.baseAddress!, into: $0.baseAddress!, count: count) }
        }
        // Largest error per element: half a step where values round into range, a whole step for
        // the symmetric formats whose scale is set by the value of largest magnitude (its mirror
        // end is clamped), as in ggml.
        let bound: Float = switch type {
        case .q4_0: 1.0 / 8
        case .q5_0: 1.0 / 16
        case .q4_1: 0.51 * 2.0 / 15
        case .q8_0: 0.51 / 127
        default: 1e-3
        }
        let worst = zip(values, back).map { abs($0 - $1) }.max()!
        #expect(worst <= bound + 2e-3, "\(type): worst error \(worst)")
    }
}

@Suite("Thread pool")
struct ThreadPoolTests {
    @Test("Every index runs exactly once, call after call", arguments: [1, 2, 3, 4])
    func coverage(threads: Int) {
        let pool = ThreadPool(threadCount: threads)
        for count in [1, 2, 3, 7, 64, 1000] {
            for _ in 0..<50 {
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
                hits.initialize(repeating: 0, count: count)
                pool.parallelFor(count) { range, thread in
                    precondition(thread >= 0 && thread < threads)
                    for index in range { hits[index] += 1 }
                }
                #expect((0..<count).allSatisfy { hits[$0] == 1 })
                hits.deallocate()
            }
        }
    }

    /// Chunks claimed as threads free up: every index once, whatever the grain (1, uneven, larger
    /// than the count) and however unevenly the threads run (one of them stalls on its first chunk).
    @Test("Claimed chunks cover every index exactly once", arguments: [1, 2, 3])
    func claimedChunks(threads: Int) {
        let pool = ThreadPool(threadCount: threads)
        for count in [1, 2, 7, 64, 1000] {
            for grain in [1, 3, 16, 2000] {
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
                hits.initialize(repeating: 0, count: count)
                let chunks = UnsafeMutablePointer<Int>.allocate(capacity: threads)
                chunks.initialize(repeating: 0, count: threads)
                pool.parallelFor(count, grain: grain) { range, thread in
                    precondition(thread >= 0 && thread < threads && range.count <= grain)
                    if thread == threads - 1 && chunks[thread] == 0 && threads > 1 { usleep(2_000) }
                    chunks[thread] += 1
                    for index in range { hits[index] += 1 }
                }
                #expect((0..<count).allSatisfy { hits[$0] == 1 }, "count \(count) grain \(grain)")
                if threads > 1 && count >= 64 && grain <= 3 {
                    // The stalled thread's share went to the others.
                    #expect(chunks[threads - 1] < (count / grain) / threads, "count \(count) grain \(grain)")
                }
                hits.deallocate()
                chunks.deallocate()
            }
        }
    }

    @Test("Pools start and stop without leaking running work")
    func lifecycle() {
        for _ in 0..<20 {
            let pool = ThreadPool(threadCount: 2)
            var total = 0
            let counter = UnsafeMutablePointer<Int>.allocate(capacity: 2)
            counter.initialize(repeating: 0, count: 2)
            pool.parallelFor(100) { range, thread in counter[thread] += range.count }
            total = counter[0] + counter[1]
            counter.deallocate()
            #expect(total == 100)
        }
    }
}

@Suite("Interleaved weights")
struct InterleavedWeightTests {
    @Test("Interleaved matmul equals row-by-row reference dot products", arguments: [(TensorType.q4_1, 1, 1), (.q4_1, 3, 2), (.q4_1, 1, 2), (.q8_0, 1, 1), (.q8_0, 3, 2), (.q8_0, 1, 2), (.q5_0, 1, 1), (.q5_0, 3, 2)])
    func interleavedMatmul(type: TensorType, tokens: Int, threads: Int) throws {
        var random = KernelRandom(state: 4242 &+ UInt64(tokens))
        let rows = 96, columns = 576
        let weights = randomBlocks(type, elements: rows * columns, random: &random)
        let input = random.floats(tokens * columns)
        let pool = ThreadPool(threadCount: threads)
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: type, data: $0.baseAddress!, rows: rows, columns: columns, pool: pool)
        })
        var released = 0
        _ = weights.withUnsafeBytes {
            InterleavedWeights(type: type, data: $0.baseAddress!, rows: rows, columns: columns) { _, count in released += count }
        }
        #expect(released == weights.count, "every source byte is handed back once")
        var output = [Float](repeating: .nan, count: rows * tokens)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: type, columns: columns, tokens: tokens), alignment: 64)
        defer { scratch.deallocate() }
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!, scratch: scratch, pool: pool)
            }
        }
        let reference = referenceMatmul(type, weights: weights, rows: rows, columns: columns, input: input, tokens: tokens)
        for token in 0..<tokens {
            for row in 0..<rows {
                let expected = reference[token * rows + row]
                #expect(abs(output[token * rows + row] - expected) <= 1e-3 * max(abs(expected), 1), "\(type) row \(row) token \(token)")
            }
        }
    }

    @Test("Unsupported shapes keep the file's layout")
    func unsupported() {
        #expect(!InterleavedWeights.supports(.q4_1, rows: 33, columns: 64))
        #expect(!InterleavedWeights.supports(.q6_K, rows: 64, columns: 320))
        #expect(!InterleavedWeights.supports(.q5_K, rows: 64, columns: 256))
    }
}

@Suite("Interleaved K-quants")
struct InterleavedKQuantTests {
    @Test("Interleaved Q4_K keeps the dot products within activation rounding of the float product", arguments: [1, 2])
    func q4K(threads: Int) throws {
        var random = KernelRandom(state: 808)
        let rows = 64, columns = 512, tokens = 2
        let weights = randomBlocks(.q4_K, elements: rows * columns, random: &random)
        let input = random.floats(tokens * columns)
        let pool = ThreadPool(threadCount: threads)
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: .q4_K, data: $0.baseAddress!, rows: rows, columns: columns, pool: pool)
        })
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: .q4_K, columns: columns, tokens: tokens), alignment: 64)
        defer { scratch.deallocate() }
        var output = [Float](repeating: .nan, count: rows * tokens)
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!, scratch: scratch, pool: pool)
            }
        }
        var dequantized = [Float](repeating: 0, count: rows * columns)
        weights.withUnsafeBytes { w in
            dequantized.withUnsafeMutableBufferPointer { Kernels.dequantizeReference(.q4_K, source: w.baseAddress!, into: $0.baseAddress!, count: rows * columns) }
        }
        for token in 0..<tokens {
            for row in 0..<rows {
                var exact = 0.0, magnitude = 0.0
                for column in 0..<columns {
                    let product = Double(dequantized[row * columns + column]) * Double(input[token * columns + column])
                    exact += product
                    magnitude += abs(product)
                }
                #expect(abs(Double(output[token * rows + row]) - exact) <= 0.02 * max(magnitude, 1e-3), "row \(row) token \(token)")
            }
        }
    }
}

@Suite("Batched kernels")
struct BatchedKernelTests {
    /// 23 tokens go through the tiled kernel and the one-token kernel; 70 (≥ `tokenLaneMinimum`,
    /// three token vectors, the last one padded) through the token-lane kernel. The extreme
    /// cases (largest weights, every activation 127) reach the largest 16-bit partial sums. (Q4_K's
    /// batches: `PromptKernelTests.superBlockKernelsAgree`.)
    @Test("Batched interleaved kernels give the one-token kernel's outputs bit for bit",
          arguments: [(TensorType.q4_1, 23, false), (.q5_0, 23, false), (.q4_1, 70, false), (.q5_0, 70, false),
                      (.q4_1, 70, true), (.q5_0, 70, true)])
    func tiledEqualsOneToken(type: TensorType, tokens: Int, extreme: Bool) throws {
        var random = KernelRandom(state: 9090 &+ UInt64(tokens))
        let rows = 64, columns = 512
        var weights = randomBlocks(type, elements: rows * columns, random: &random)
        var input = random.floats(tokens * columns)
        if extreme {
            // Q4_1: every nibble 15; Q5_0: every high bit and nibble set (q = 15, 31 once offset).
            let blockBytes = type.bytesPerBlock, quantStart = type == .q4_1 ? 4 : 2
            for b in 0..<(weights.count / blockBytes) {
                for i in quantStart..<blockBytes { weights[b * blockBytes + i] = 0xFF }
            }
            input = input.map { _ in 0.5 }
        }
        let pool = ThreadPool(threadCount: 2)
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: type, data: $0.baseAddress!, rows: rows, columns: columns, pool: pool)
        })
        #expect(interleaved.supportsTiles)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: interleaved.type, columns: columns, tokens: tokens), alignment: 64)
        defer { scratch.deallocate() }
        var batched = [Float](repeating: .nan, count: rows * tokens)
        input.withUnsafeBufferPointer { x in
            batched.withUnsafeMutableBufferPointer { y in
                Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!, scratch: scratch, pool: pool)
            }
        }
        for token in 0..<tokens {
            var single = [Float](repeating: .nan, count: rows)
            input.withUnsafeBufferPointer { x in
                single.withUnsafeMutableBufferPointer { y in
                    Kernels.matmul(interleaved: interleaved, input: x.baseAddress! + token * columns, tokens: 1, output: y.baseAddress!, scratch: scratch, pool: pool)
                }
            }
            for row in 0..<rows {
                #expect(batched[token * rows + row].bitPattern == single[row].bitPattern, "\(type) row \(row) token \(token)")
            }
        }
    }

    @Test("Interleaved Q6_K gives the row kernel's and its scalar twin's outputs bit for bit",
          arguments: [(23, 2048, false), (1, 2048, false), (17, 1024, false), (7, 1280, false), (5, 512, true), (1, 512, true)])
    func q6K(tokens: Int, columns: Int, extreme: Bool) throws {
        var random = KernelRandom(state: 6006 &+ UInt64(tokens))
        let rows = 64
        var weights = randomBlocks(.q6_K, elements: rows * columns, random: &random)
        var input = random.floats(tokens * columns)
        if extreme {
            // Every weight −32 with scale −128 and every activation quantized to −127: the largest
            // Int16 half sub-block sum (8 · 32 · 127 = 32512) and the largest scaled sums.
            for b in 0..<(weights.count / 210) {
                for i in 0..<192 { weights[b * 210 + i] = 0 }
                for i in 192..<208 { weights[b * 210 + i] = 0x80 }
            }
            input = input.map { _ in 0.5 }
        }
        let pool = ThreadPool(threadCount: 2)
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: .q6_K, data: $0.baseAddress!, rows: rows, columns: columns, pool: pool)
        })
        #expect(interleaved.byteCount == weights.count, "the same size as the file")
        let rowBytes = weights.count / rows, activationRowBytes = columns / 256 * 292
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: .q6_K, columns: columns, tokens: tokens), alignment: 64)
        defer { scratch.deallocate() }
        var batched = [Float](repeating: .nan, count: rows * tokens)
        input.withUnsafeBufferPointer { x in
            batched.withUnsafeMutableBufferPointer { y in
                Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!, scratch: scratch, pool: pool)
            }
        }
        // The scratch holds the Q8_K activations the kernel used.
        var twin = [Float](repeating: .nan, count: rows * tokens)
        twin.withUnsafeMutableBufferPointer {
            interleaved.multiplyQ6_KReference(activations: scratch, activationRowBytes: activationRowBytes, tokens: tokens, output: $0.baseAddress!)
        }
        weights.withUnsafeBytes { w in
            for token in 0..<tokens {
                for row in 0..<rows {
                    let expected = Kernels.dot(.q6_K, weights: w.baseAddress! + row * rowBytes,
                                               activation: scratch + token * activationRowBytes, count: columns)
                    #expect(batched[token * rows + row].bitPattern == expected.bitPattern, "row \(row) token \(token)")
                    #expect(twin[token * rows + row].bitPattern == expected.bitPattern, "twin row \(row) token \(token)")
                }
            }
        }
        if extreme { #expect(batched[0] != 0 && batched[0].isFinite) }
    }

    @Test("Scores of grouped queries equal each query's scores alone, to the bit",
          arguments: [(64, 1), (64, 2), (64, 3), (128, 4), (256, 5), (64, 8), (32, 7)])
    func groupedScores(length: Int, queryCount: Int) {
        var random = KernelRandom(state: 91 &+ UInt64(length * 10 + queryCount))
        let stride = length * 2 + 16
        for count in [1, 3, 4, 37] {
            let queries = random.floats(queryCount * length).map { Float(Float16($0)) }
            let rows = random.floats(count * stride).map { Float16($0) }
            let scoreStride = count + 5
            var grouped = [Float](repeating: .nan, count: queryCount * scoreStride), alone = grouped
            queries.withUnsafeBufferPointer { q in
                rows.withUnsafeBufferPointer { r in
                    AttentionKernels.scoreHalfKeys(queries: q.baseAddress!, queryCount: queryCount, keys: r.baseAddress!, keyStride: stride,
                                                   count: count, length: length, scale: 0.125, scores: &grouped, scoreStride: scoreStride)
                    alone.withUnsafeMutableBufferPointer { a in
                        for query in 0..<queryCount {
                            AttentionKernels.scoreHalfKeysReference(query: q.baseAddress! + query * length, keys: r.baseAddress!, keyStride: stride,
                                                                    count: count, length: length, scale: 0.125,
                                                                    scores: a.baseAddress! + query * scoreStride)
                        }
                    }
                }
            }
            // Cells past `count` in each row stay untouched (NaN) in both.
            #expect(grouped.map(\.bitPattern) == alone.map(\.bitPattern), "count \(count)")
        }
    }

    @Test("Attention kernels over half-precision rows equal their scalar twins", arguments: [64, 256, 40])
    func attention(length: Int) {
        var random = KernelRandom(state: 77 &+ UInt64(length))
        let stride = length * 2 + 16, count = 37
        let query = random.floats(length)
        let rows = random.floats(count * stride).map { Float16($0) }
        let weights = random.floats(count).map { Float(Float16(abs($0))) }
        query.withUnsafeBufferPointer { q in
            rows.withUnsafeBufferPointer { r in
                if length % 16 == 0 {
                    var fast = [Float](repeating: .nan, count: count), slow = fast
                    AttentionKernels.scoreHalfKeys(query: q.baseAddress!, keys: r.baseAddress!, keyStride: stride, count: count,
                                                   length: length, scale: 0.125, scores: &fast)
                    AttentionKernels.scoreHalfKeysReference(query: q.baseAddress!, keys: r.baseAddress!, keyStride: stride, count: count,
                                                            length: length, scale: 0.125, scores: &slow)
                    #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern))
                }
                weights.withUnsafeBufferPointer { w in
                    var fast = [Float](repeating: .nan, count: length), slow = fast
                    AttentionKernels.weightHalfValues(weights: w.baseAddress!, values: r.baseAddress!, valueStride: stride, count: count,
                                                      length: length, output: &fast)
                    AttentionKernels.weightHalfValuesReference(weights: w.baseAddress!, values: r.baseAddress!, valueStride: stride,
                                                               count: count, length: length, output: &slow)
                    #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern))
                }
            }
        }
    }
}
