import EmberCore
import EmberGGUF
import EmberLM
import Testing

/// `InferenceSession.decode(_:sessions:)`: one pass over the weights for one token of each of
/// several sequences gives the logits each sequence gets alone, bit for bit.
@Suite struct BatchedDecodeTests {
    static let prompts: [[Int32]] = [[1, 5, 9, 13, 2], [7, 3, 3, 8, 20, 31, 4, 11, 6], [42, 17]]

    /// Logits of `steps` greedy decode steps of each prompt: decoded together when `batched`,
    /// else one sequence at a time.
    static func decodeLogits(_ model: TransformerModel, batched: Bool, steps: Int, threads: Int) throws -> [[[Float]]] {
        let sessions = prompts.map { _ in InferenceSession(model: model, contextLength: 64, threadCount: threads) }
        var next = [Int32](repeating: 0, count: prompts.count)
        for (index, prompt) in prompts.enumerated() {
            try sessions[index].evaluate(prompt, logits: .last) { _, logits in next[index] = Self.argmax(logits) }
        }
        var result = [[[Float]]](repeating: [], count: prompts.count)
        for _ in 0..<steps {
            let tokens = next
            if batched {
                try InferenceSession.decode(tokens, sessions: sessions) { index, logits in
                    result[index].append(Array(logits))
                    next[index] = Self.argmax(logits)
                }
            } else {
                for index in sessions.indices {
                    try sessions[index].evaluate([tokens[index]], logits: .last) { _, logits in
                        result[index].append(Array(logits))
                        next[index] = Self.argmax(logits)
                    }
                }
            }
        }
        for (index, session) in sessions.enumerated() { #expect(session.position == prompts[index].count + steps) }
        return result
    }

    static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        Int32(logits.indices.max { logits[$0] < logits[$1] }!)
    }

    @Test(arguments: [TensorType.f32, .q8_0, .q4_1, .q4_0, .q5_0])
    func randomLlamaMatchesSeparateDecoding(type: TensorType) throws {
        let model = try TransformerModel(file: GGUFFile(bytes: TinyLlama(seed: 21).gguf(matrixType: type)))
        for threads in [1, 2] {
            let together = try Self.decodeLogits(model, batched: true, steps: 6, threads: threads)
            let alone = try Self.decodeLogits(model, batched: false, steps: 6, threads: threads)
            #expect(together == alone, "\(type), \(threads) threads")
        }
    }

    /// Routed experts (rows routed to different experts in one step) and an architecture with its
    /// own forward pass.
    @Test(arguments: ["qwen3moe-q8_0", "qwen3-q8_0", "phi3-f32", "gemma3n-f32"])
    func tinyArchitecturesMatchSeparateDecoding(name: String) throws {
        let model = try TestSupport.tinyModel(name)
        let together = try Self.decodeLogits(model, batched: true, steps: 4, threads: 2)
        let alone = try Self.decodeLogits(model, batched: false, steps: 4, threads: 2)
        #expect(together == alone, "\(name)")
    }

    /// Gemma 3n and Gemma 4 run their own forward passes, written with the shared blocks: rows of
    /// three sequences in one pass (KV caches shared across layers, per-layer embeddings, AltUp
    /// streams, routed experts) give the logits of decoding each sequence alone, at 1 and 2 threads.
    @Test(arguments: ["gemma3n-f32", "gemma3n-q8_0", "gemma4-f32", "gemma4-q8_0", "gemma4moe-f32", "gemma4moe-q8_0"])
    func perLayerGemmaMatchesSeparateDecoding(name: String) throws {
        let model = try TestSupport.tinyModel(name)
        for threads in [1, 2] {
            let together = try Self.decodeLogits(model, batched: true, steps: 4, threads: threads)
            let alone = try Self.decodeLogits(model, batched: false, steps: 4, threads: threads)
            #expect(together.map(\.count) == [4, 4, 4])
            #expect(together == alone, "\(name), \(threads) threads")
        }
    }

    /// The real models' interleaved kernels (Q4_1, Q4_K, Q6_K, Q8_0) with rows of three sequences.
    @Test(arguments: ["smollm2", "gemma3"])
    func realModelsMatchSeparateDecoding(alias: String) throws {
        let model = try LanguageModel(path: TestSupport.modelPath(alias)).transformer
        let together = try Self.decodeLogits(model, batched: true, steps: 3, threads: 2)
        let alone = try Self.decodeLogits(model, batched: false, steps: 3, threads: 2)
        #expect(together == alone, "\(alias)")
    }

    @Test func refusesMismatchedInput() throws {
        let model = try TransformerModel(file: GGUFFile(bytes: TinyLlama(seed: 5).gguf(matrixType: .f32)))
        let other = try TransformerModel(file: GGUFFile(bytes: TinyLlama(seed: 5).gguf(matrixType: .f32)))
        let first = InferenceSession(model: model, contextLength: 4, threadCount: 1)
        let second = InferenceSession(model: other, contextLength: 4, threadCount: 1)
        #expect(throws: LanguageModelError.self) { try InferenceSession.decode([1, 2], sessions: [first, second]) { _, _ in } }
        #expect(throws: LanguageModelError.self) { try InferenceSession.decode([1, 2], sessions: [first, first]) { _, _ in } }
        #expect(throws: LanguageModelError.self) { try InferenceSession.decode([1], sessions: [first, first]) { _, _ in } }
        let third = InferenceSession(model: model, contextLength: 4, threadCount: 1)
        #expect(throws: LanguageModelError.self) { try InferenceSession.decode([1, 999], sessions: [first, third]) { _, _ in } }
        try first.evaluate([1, 2, 3, 4], logits: .none)
        #expect(throws: LanguageModelError.self) { try InferenceSession.decode([1, 2], sessions: [first, third]) { _, _ in } }
    }
}
