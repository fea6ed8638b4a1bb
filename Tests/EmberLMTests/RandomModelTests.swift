import EmberCore
import EmberGGUF
import EmberKernels
@testable import EmberLM
import Foundation
import Testing

/// A tiny llama model with seeded random weights, written with `GGUFWriter`, checked against a
/// plain double-precision forward pass written here from the architecture's definition.
struct TinyLlama {
    static let vocabulary = 64, embedding = 32, feedForward = 64, heads = 4, keyValueHeads = 2, headLength = 8, layers = 2
    static let ropeBase: Float = 10_000, epsilon: Float = 1e-5

    /// Named float tensors (row-major: rows × columns, GGUF dimensions [columns, rows]).
    var tensors: [(name: String, rows: Int, columns: Int, values: [Float])] = []

    init(seed: UInt64) {
        var random = SeededRandomSource(seed: seed)
        func values(_ count: Int, scale: Float, offset: Float = 0) -> [Float] {
            (0..<count).map { _ in offset + scale * Float(random.nextUnitValue() * 2 - 1) }
        }
        let e = Self.embedding, f = Self.feedForward, q = Self.heads * Self.headLength, kv = Self.keyValueHeads * Self.headLength
        tensors.append(("token_embd.weight", Self.vocabulary, e, values(Self.vocabulary * e, scale: 1)))
        tensors.append(("output_norm.weight", 1, e, values(e, scale: 0.2, offset: 1)))
        for layer in 0..<Self.layers {
            let p = "blk.\(layer)."
            tensors.append((p + "attn_norm.weight", 1, e, values(e, scale: 0.2, offset: 1)))
            tensors.append((p + "attn_q.weight", q, e, values(q * e, scale: 0.3)))
            tensors.append((p + "attn_k.weight", kv, e, values(kv * e, scale: 0.3)))
            tensors.append((p + "attn_v.weight", kv, e, values(kv * e, scale: 0.3)))
            tensors.append((p + "attn_output.weight", e, q, values(e * q, scale: 0.3)))
            tensors.append((p + "ffn_norm.weight", 1, e, values(e, scale: 0.2, offset: 1)))
            tensors.append((p + "ffn_gate.weight", f, e, values(f * e, scale: 0.3)))
            tensors.append((p + "ffn_up.weight", f, e, values(f * e, scale: 0.3)))
            tensors.append((p + "ffn_down.weight", e, f, values(e * f, scale: 0.3)))
        }
    }

    func tensor(_ name: String) -> [Float] { tensors.first { $0.name == name }!.values }

    /// A GGUF file of this model with matrices stored as `matrixType` (vectors stay F32).
    func gguf(matrixType: TensorType) -> [UInt8] {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("general.name", .string("tiny-random-llama"))
        writer.set("llama.block_count", .uint32(UInt32(Self.layers)))
        writer.set("llama.context_length", .uint32(256))
        writer.set("llama.embedding_length", .uint32(UInt32(Self.embedding)))
        writer.set("llama.feed_forward_length", .uint32(UInt32(Self.feedForward)))
        writer.set("llama.attention.head_count", .uint32(UInt32(Self.heads)))
        writer.set("llama.attention.head_count_kv", .uint32(UInt32(Self.keyValueHeads)))
        writer.set("llama.rope.freq_base", .float32(Self.ropeBase))
        writer.set("llama.attention.layer_norm_rms_epsilon", .float32(Self.epsilon))
        writer.set("llama.vocab_size", .uint32(UInt32(Self.vocabulary)))
        for tensor in tensors {
            let type: TensorType = tensor.rows == 1 ? .f32 : matrixType
            let byteCount = type.byteCount(elements: tensor.values.count)!
            var bytes = [UInt8](repeating: 0, count: byteCount)
            tensor.values.withUnsafeBufferPointer { source in
                bytes.withUnsafeMutableBytes { destination in
                    Kernels.quantizeReference(source.baseAddress!, count: source.count, as: type, into: destination.baseAddress!)
                }
            }
            let dimensions = tensor.rows == 1 ? [tensor.columns] : [tensor.columns, tensor.rows]
            writer.addTensor(name: tensor.name, dimensions: dimensions, type: type, data: bytes)
        }
        return writer.serialized()
    }

    /// Logits after each token, computed in double precision straight from the definition of llama.
    func referenceLogits(_ tokens: [Int32]) -> [[Double]] {
        let e = Self.embedding, h = Self.headLength, group = Self.heads / Self.keyValueHeads
        func matrixVector(_ name: String, _ x: [Double], rows: Int) -> [Double] {
            let w = tensor(name)
            return (0..<rows).map { r in (0..<x.count).reduce(0.0) { $0 + Double(w[r * x.count + $1]) * x[$1] } }
        }
        func norm(_ x: [Double], _ name: String) -> [Double] {
            let w = tensor(name)
            let scale = 1 / (x.reduce(0) { $0 + $1 * $1 } / Double(x.count) + Double(Self.epsilon)).squareRoot()
            return x.indices.map { x[$0] * scale * Double(w[$0]) }
        }
        func rope(_ x: inout [Double], heads: Int, position: Int) {
            for head in 0..<heads {
                for pair in 0..<(h / 2) {
                    let theta = Double(position) * pow(Double(Self.ropeBase), -2 * Double(pair) / Double(h))
                    let i = head * h + 2 * pair
                    let (a, b) = (x[i], x[i + 1])
                    x[i] = a * cos(theta) - b * sin(theta)
                    x[i + 1] = a * sin(theta) + b * cos(theta)
                }
            }
        }
        var keys = Array(repeating: [[Double]](), count: Self.layers)
        var values = Array(repeating: [[Double]](), count: Self.layers)
        var result: [[Double]] = []
        let embeddingTable = tensor("token_embd.weight")
        for (position, token) in tokens.enumerated() {
            var x = (0..<e).map { Double(embeddingTable[Int(token) * e + $0]) }
            for layer in 0..<Self.layers {
                let p = "blk.\(layer)."
                let n = norm(x, p + "attn_norm.weight")
                var q = matrixVector(p + "attn_q.weight", n, rows: Self.heads * h)
                var k = matrixVector(p + "attn_k.weight", n, rows: Self.keyValueHeads * h)
                let v = matrixVector(p + "attn_v.weight", n, rows: Self.keyValueHeads * h)
                rope(&q, heads: Self.heads, position: position)
                rope(&k, heads: Self.keyValueHeads, position: position)
                keys[layer].append(k)
                values[layer].append(v)
                var attention = [Double](repeating: 0, count: Self.heads * h)
                for head in 0..<Self.heads {
                    let kvHead = head / group
                    let scores = (0...position).map { j in
                        (0..<h).reduce(0.0) { $0 + q[head * h + $1] * keys[layer][j][kvHead * h + $1] } / Double(h).squareRoot()
                    }
                    let maximum = scores.max()!
                    let weights = scores.map { exp($0 - maximum) }
                    let total = weights.reduce(0, +)
                    for j in 0...position {
                        for d in 0..<h { attention[head * h + d] += weights[j] / total * values[layer][j][kvHead * h + d] }
                    }
                }
                let projected = matrixVector(p + "attn_output.weight", attention, rows: e)
                x = x.indices.map { x[$0] + projected[$0] }
                let n2 = norm(x, p + "ffn_norm.weight")
                let gate = matrixVector(p + "ffn_gate.weight", n2, rows: Self.feedForward)
                let up = matrixVector(p + "ffn_up.weight", n2, rows: Self.feedForward)
                let activated = gate.indices.map { gate[$0] / (1 + exp(-gate[$0])) * up[$0] }
                let down = matrixVector(p + "ffn_down.weight", activated, rows: e)
                x = x.indices.map { x[$0] + down[$0] }
            }
            result.append(matrixVector("token_embd.weight", norm(x, "output_norm.weight"), rows: Self.vocabulary))
        }
        return result
    }
}

@Suite("Transformer forward pass on a tiny random model")
struct RandomModelTests {
    static let tokens: [Int32] = [3, 17, 42, 5, 63, 0, 9, 9, 31, 12, 7, 50]

    func logits(_ file: GGUFFile, tokens: [Int32], batchSize: Int, threads: Int) throws -> [[Float]] {
        let model = try TransformerModel(file: file)
        let session = InferenceSession(model: model, contextLength: 64, batchSize: batchSize, threadCount: threads)
        var rows: [[Float]] = []
        try session.evaluate(tokens, logits: .all) { _, logits in rows.append(Array(logits)) }
        return rows
    }

    @Test("F32 weights agree with a double-precision reference", arguments: [1, 2])
    func matchesReference(threads: Int) throws {
        let tiny = TinyLlama(seed: 7)
        let file = try GGUFFile(bytes: tiny.gguf(matrixType: .f32))
        let ours = try logits(file, tokens: Self.tokens, batchSize: 512, threads: threads)
        let reference = tiny.referenceLogits(Self.tokens)
        #expect(ours.count == reference.count)
        var worst = 0.0
        for (row, expected) in zip(ours, reference) {
            for (value, target) in zip(row, expected) { worst = max(worst, abs(Double(value) - target)) }
            #expect(row.withUnsafeBufferPointer { Sampler.argmax($0) } == Int32(expected.indices.max { expected[$0] < expected[$1] }!))
        }
        // Half-precision KV cache and attention weights, as llama.cpp: small but non-zero differences.
        #expect(worst < 0.05, "largest logit difference \(worst)")
    }

    @Test("Batched prompt equals token-by-token evaluation", arguments: [TensorType.f32, .f16, .q8_0, .q4_0, .q4_1])
    func batchEqualsSteps(type: TensorType) throws {
        let file = try GGUFFile(bytes: TinyLlama(seed: 11).gguf(matrixType: type))
        let batched = try logits(file, tokens: Self.tokens, batchSize: 512, threads: 2)
        let stepped = try logits(file, tokens: Self.tokens, batchSize: 1, threads: 1)
        var worst: Float = 0
        for (a, b) in zip(batched, stepped) {
            for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) }
        }
        #expect(worst < 1e-3, "batched and stepped logits differ by \(worst) for \(type)")
    }

    @Test("Quantized weights stay close to F32", arguments: [(TensorType.f16, 0.05), (.q8_0, 0.15), (.q4_0, 1.5), (.q4_1, 1.5)])
    func quantizedCloseToFloat(type: TensorType, tolerance: Double) throws {
        let tiny = TinyLlama(seed: 5)
        let exact = try logits(GGUFFile(bytes: tiny.gguf(matrixType: .f32)), tokens: Self.tokens, batchSize: 512, threads: 2)
        let quantized = try logits(GGUFFile(bytes: tiny.gguf(matrixType: type)), tokens: Self.tokens, batchSize: 512, threads: 2)
        var total = 0.0, count = 0
        for (a, b) in zip(exact, quantized) {
            for (x, y) in zip(a, b) { total += Double(abs(x - y)); count += 1 }
        }
        #expect(total / Double(count) < tolerance, "mean |Δlogit| \(total / Double(count)) for \(type)")
    }

    @Test("Tokens outside the vocabulary and an overfull context are refused")
    func invalidInput() throws {
        let file = try GGUFFile(bytes: TinyLlama(seed: 3).gguf(matrixType: .f32))
        let model = try TransformerModel(file: file)
        let session = InferenceSession(model: model, contextLength: 16, threadCount: 1)
        #expect(throws: LanguageModelError.self) { try session.evaluate([64], logits: .last) }
        #expect(throws: LanguageModelError.self) { try session.evaluate([Int32](repeating: 1, count: 17), logits: .last) }
    }
}
