import EmberCore
@testable import EmberKernels
import Foundation
import Testing

/// The kernels that add up in llama.cpp's x86 order (ElementwiseKernels, the Q8_0 and F32 dot
/// products, attention) equal their scalar twins bit for bit, and every Q8_0 path (row, interleaved,
/// streaming) gives the same bits. TinyArchitectureTests checks the order itself against llama.cpp.
@Suite("Kernels in llama.cpp's order")
struct LlamaOrderTests {
    @Test("Sums in halves equal their scalar twin")
    func sumsInHalves() {
        var random = KernelRandom(state: 11)
        for _ in 0..<1000 {
            let values = random.floats(16, scale: 1000)
            let sixteen = SIMD16<Float>(values)
            #expect(ElementwiseKernels.sumInHalves(sixteen).bitPattern == ElementwiseKernels.sumInHalvesReference(values).bitPattern)
            let eight = SIMD8<Float>(values[0..<8])
            #expect(ElementwiseKernels.sumInHalves(eight).bitPattern == ElementwiseKernels.sumInHalvesReference(Array(values[0..<8])).bitPattern)
        }
    }

    @Test("The vector exponential equals its scalar twin and stays within 2 ulp of expf")
    func exponential() {
        var random = KernelRandom(state: 12)
        var inputs = random.floats(4096, scale: 90)
        inputs += [0, -0.0, 1, -1, 88, -87, 89, -104, -126, -150, -200, 200, -.infinity, .infinity, 1e-30, -1e-30]
        inputs += (-200...200).map { Float($0) * 0.693147 }
        while inputs.count % 16 != 0 { inputs.append(0.5) }
        for start in stride(from: 0, to: inputs.count, by: 16) {
            let vector = ElementwiseKernels.exponential(SIMD16<Float>(inputs[start..<(start + 16)]))
            for lane in 0..<16 {
                let x = inputs[start + lane]
                let scalar = ElementwiseKernels.exponentialReference(x)
                #expect(vector[lane].bitPattern == scalar.bitPattern, "e^\(x): \(vector[lane]) vs \(scalar)")
                let exact = expf(x)
                if exact.isNormal && exact < 1e38 {
                    #expect(abs(scalar - exact) <= 2 * exact.ulp, "e^\(x): \(scalar) vs expf \(exact)")
                }
            }
        }
        #expect(ElementwiseKernels.exponentialReference(-.infinity) == 0)
        #expect(ElementwiseKernels.exponentialReference(.infinity) == .infinity)
    }

    @Test("SwiGLU rows equal their scalar twin", arguments: [16, 40, 64, 7])
    func swiGLU(width: Int) {
        var random = KernelRandom(state: 13 &+ UInt64(width))
        let gate = random.floats(width, scale: 12), up = random.floats(width, scale: 3)
        var fast = gate, slow = gate
        up.withUnsafeBufferPointer { u in
            fast.withUnsafeMutableBufferPointer {
                ElementwiseKernels.swiGLU($0.baseAddress!, multipliers: u.baseAddress!, count: width, expf: { expf($0) })
            }
            slow.withUnsafeMutableBufferPointer {
                ElementwiseKernels.swiGLUReference($0.baseAddress!, multipliers: u.baseAddress!, count: width, expf: { expf($0) })
            }
        }
        #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern))
    }

    @Test("F32 dot products equal their twin for every length path", arguments: [48, 4, 12, 96, 100, 128, 131, 200])
    func f32Dot(count: Int) {
        var random = KernelRandom(state: 14 &+ UInt64(count))
        let weights = random.floats(count), activation = random.floats(count)
        weights.withUnsafeBytes { w in
            activation.withUnsafeBytes { a in
                let fast = Kernels.dot(.f32, weights: w.baseAddress!, activation: a.baseAddress!, count: count)
                let slow = Kernels.dotReference(.f32, weights: w.baseAddress!, activation: a.baseAddress!, count: count)
                #expect(fast.bitPattern == slow.bitPattern)
                let rowByRow = VectorKernels.dotF32VectorDot(w.baseAddress!, a.baseAddress!, count)
                let rowByRowTwin = ReferenceKernels.dotF32VectorDot(w.baseAddress!, a.baseAddress!, count)
                #expect(rowByRow.bitPattern == rowByRowTwin.bitPattern)
            }
        }
    }

    @Test("Q8_0: row, interleaved and streaming kernels and the scalar twin give the same bits", arguments: [1, 3, 17])
    func q8_0(tokens: Int) throws {
        var random = KernelRandom(state: 15 &+ UInt64(tokens))
        let rows = 64, columns = 320
        let weights = randomBlocks(.q8_0, elements: rows * columns, random: &random)
        let input = random.floats(tokens * columns, scale: 3)
        let pool = ThreadPool(threadCount: 2)
        let scratchBytes = Kernels.matmulScratchBytes(type: .q8_0, columns: columns, tokens: tokens)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)
        defer { scratch.deallocate() }
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: .q8_0, data: $0.baseAddress!, rows: rows, columns: columns)
        })
        var rowKernel = [Float](repeating: .nan, count: rows * tokens), rearranged = rowKernel, streamed = rowKernel
        weights.withUnsafeBytes { w in
            input.withUnsafeBufferPointer { x in
                Kernels.matmul(weights: w.baseAddress!, type: .q8_0, rows: rows, columns: columns, input: x.baseAddress!, tokens: tokens,
                               output: &rowKernel, scratch: scratch, pool: pool)
                Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: &rearranged, scratch: scratch, pool: pool)
                Kernels.matmulInInterleavedOrder(weights: w.baseAddress!, type: .q8_0, rows: rows, columns: columns, input: x.baseAddress!,
                                                 tokens: tokens, output: &streamed, scratch: scratch, pool: pool)
            }
        }
        #expect(rearranged.map(\.bitPattern) == rowKernel.map(\.bitPattern))
        #expect(streamed.map(\.bitPattern) == rowKernel.map(\.bitPattern))
        // The twin, from activations quantized the same way.
        let activationBytes = Kernels.activationType(for: .q8_0).byteCount(elements: columns)!
        var activation = [UInt8](repeating: 0, count: activationBytes)
        let rowBytes = TensorType.q8_0.byteCount(elements: columns)!
        for token in 0..<tokens {
            input.withUnsafeBufferPointer { x in
                activation.withUnsafeMutableBytes {
                    Kernels.quantize(x.baseAddress! + token * columns, count: columns, as: .q8_0, into: $0.baseAddress!)
                }
            }
            for row in 0..<rows {
                let twin = weights.withUnsafeBytes { w in
                    activation.withUnsafeBytes { a in
                        Kernels.dotReference(.q8_0, weights: w.baseAddress! + row * rowBytes, activation: a.baseAddress!, count: columns)
                    }
                }
                #expect(twin.bitPattern == rowKernel[token * rows + row].bitPattern, "row \(row) token \(token)")
            }
        }
    }

    /// Q8_0 in a model that cannot match llama.cpp's bits anyway adds up one integer sum per block:
    /// the interleaved and streaming kernels agree bit for bit with a scalar twin of that order.
    @Test("Q8_0 per-block order: interleaved, streaming and the scalar twin give the same bits", arguments: [1, 3, 17])
    func q8_0Blocks(tokens: Int) throws {
        var random = KernelRandom(state: 25 &+ UInt64(tokens))
        let rows = 64, columns = 320
        let weights = randomBlocks(.q8_0, elements: rows * columns, random: &random)
        let input = random.floats(tokens * columns, scale: 3)
        let pool = ThreadPool(threadCount: 2)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Kernels.matmulScratchBytes(type: .q8_0, columns: columns, tokens: tokens),
                                                       alignment: 64)
        defer { scratch.deallocate() }
        let interleaved = try #require(weights.withUnsafeBytes {
            InterleavedWeights(type: .q8_0, data: $0.baseAddress!, rows: rows, columns: columns, llamaOrder: false)
        })
        var rearranged = [Float](repeating: .nan, count: rows * tokens), streamed = rearranged
        weights.withUnsafeBytes { w in
            input.withUnsafeBufferPointer { x in
                Kernels.matmul(interleaved: interleaved, input: x.baseAddress!, tokens: tokens, output: &rearranged, scratch: scratch, pool: pool)
                Kernels.matmulInInterleavedOrder(weights: w.baseAddress!, type: .q8_0, rows: rows, columns: columns, input: x.baseAddress!,
                                                 tokens: tokens, output: &streamed, scratch: scratch, pool: pool, llamaOrder: false)
            }
        }
        #expect(rearranged.map(\.bitPattern) == streamed.map(\.bitPattern))
        let activationBytes = Kernels.activationType(for: .q8_0).byteCount(elements: columns)!
        let rowBytes = TensorType.q8_0.byteCount(elements: columns)!
        var activation = [UInt8](repeating: 0, count: activationBytes)
        var differing = 0
        for token in 0..<tokens {
            input.withUnsafeBufferPointer { x in
                activation.withUnsafeMutableBytes { Kernels.quantize(x.baseAddress! + token * columns, count: columns, as: .q8_0, into: $0.baseAddress!) }
            }
            for row in 0..<rows {
                // The twin: Σ over blocks, in order, of Float(Σ w·a) · (d_w · d_a).
                var sum: Float = 0
                weights.withUnsafeBytes { w in
                    activation.withUnsafeBytes { a in
                        for block in 0..<(columns / 32) {
                            let wb = w.baseAddress! + row * rowBytes + block * 34, ab = a.baseAddress! + block * 34
                            var integer: Int32 = 0
                            for j in 0..<32 { integer += Int32(wb.load(fromByteOffset: 2 + j, as: Int8.self)) * Int32(ab.load(fromByteOffset: 2 + j, as: Int8.self)) }
                            let scales = Float(wb.loadUnaligned(as: Float16.self)) * Float(ab.loadUnaligned(as: Float16.self))
                            sum += Float(integer) * scales
                        }
                    }
                }
                if sum.bitPattern != rearranged[token * rows + row].bitPattern { differing += 1 }
            }
        }
        #expect(differing == 0)
    }

    @Test("Attention values by KV cell equal their scalar twin from any first cell", arguments: [0, 5, 16, 29])
    func attentionValues(firstCell: Int) {
        var random = KernelRandom(state: 16 &+ UInt64(firstCell))
        let length = 48, stride = 2 * length + 8, count = 41
        let rows = random.floats(count * stride).map { Float16($0) }
        let weights = random.floats(count).map { Float(Float16(abs($0))) }
        var fast = [Float](repeating: .nan, count: length), slow = fast
        rows.withUnsafeBufferPointer { r in
            weights.withUnsafeBufferPointer { w in
                AttentionKernels.weightHalfValues(weights: w.baseAddress!, values: r.baseAddress!, valueStride: stride, count: count,
                                                  firstCell: firstCell, length: length, output: &fast)
                AttentionKernels.weightHalfValuesReference(weights: w.baseAddress!, values: r.baseAddress!, valueStride: stride,
                                                           count: count, firstCell: firstCell, length: length, output: &slow)
            }
        }
        #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern))
    }
}
