import EmberLM
import Testing

/// Sampling settings are checked before use; the sampler never traps or draws from NaN.
@Suite("Sampling values are validated")
struct SamplingValidationTests {
    static let invalid: [(String, SamplingParameters)] = [
        ("temperature", SamplingParameters(temperature: .nan)),
        ("temperature", SamplingParameters(temperature: -1)),
        ("temperature", SamplingParameters(temperature: .infinity)),
        ("top-k", SamplingParameters(topK: -1)),
        ("top-p", SamplingParameters(topP: .nan)),
        ("top-p", SamplingParameters(topP: 1.5)),
        ("min-p", SamplingParameters(minP: .nan)),
        ("min-p", SamplingParameters(minP: -0.1)),
        ("repeat penalty", SamplingParameters(repetitionPenalty: .nan)),
        ("repeat penalty", SamplingParameters(repetitionPenalty: 0)),
        ("repeat penalty", SamplingParameters(repetitionPenalty: Float.leastNonzeroMagnitude)),
        ("repeat penalty", SamplingParameters(repetitionPenalty: .infinity)),
        ("frequency penalty", SamplingParameters(frequencyPenalty: .nan)),
        ("frequency penalty", SamplingParameters(frequencyPenalty: 1e30)),
        ("presence penalty", SamplingParameters(presencePenalty: .nan)),
        ("presence penalty", SamplingParameters(presencePenalty: -.infinity)),
        ("penalty window", SamplingParameters(penaltyWindow: -1)),
    ]

    @Test("Each out-of-range value is refused with a message naming it and its range", arguments: invalid.indices)
    func refused(_ index: Int) {
        let (name, parameters) = Self.invalid[index]
        do {
            try parameters.validate()
            Issue.record("\(parameters) accepted")
        } catch {
            #expect(error.kind == .invalidInput)
            #expect(error.message.hasPrefix(name), "\(error.message)")
            #expect(error.message.contains("at least") || error.message.contains("between"), "\(error.message)")
        }
        #expect(throws: LanguageModelError.self) { try Sampler(validating: parameters) }
    }

    @Test("Defaults, greedy and the extremes of each range are accepted")
    func accepted() throws {
        for parameters in [SamplingParameters(), .greedy, SamplingParameters(temperature: 1e-38, topK: 0, topP: 1, minP: 0),
                           SamplingParameters(repetitionPenalty: 0.01, frequencyPenalty: -100, presencePenalty: 100)] {
            try parameters.validate()
        }
    }

    @Test("A tiny temperature samples as greedy, without infinities", arguments: [Float(1e-38), 1e-30, 1e-7])
    func tinyTemperature(_ temperature: Float) {
        let logits: [Float] = [1, 30, -2, 29.9, 0]
        var sampler = Sampler(parameters: SamplingParameters(temperature: temperature, topK: 0, topP: 1, minP: 0, seed: 7))
        for _ in 0..<100 { #expect(logits.withUnsafeBufferPointer { sampler.sample($0) } == 1) }
    }

    @Test("NaN logits handed straight to a sampler give a valid index, never a trap",
          arguments: [SamplingParameters.greedy, SamplingParameters(seed: 3), SamplingParameters(repetitionPenalty: 1.3, seed: 3),
                      SamplingParameters(temperature: 0.7, topK: 0, topP: 0.5, minP: 0.2)])
    func nanLogits(_ parameters: SamplingParameters) {
        var sampler = Sampler(parameters: parameters)
        for token: Int32 in [0, 1, 2] { sampler.accept(token) }
        for logits: [Float] in [[.nan, .nan, .nan], [.nan, 2, 1], [1, .nan, .infinity], [-.infinity, -.infinity]] {
            let id = logits.withUnsafeBufferPointer { sampler.sample($0) }
            #expect((0..<Int32(logits.count)).contains(id), "\(logits) → \(id)")
        }
    }

    @Test("A generation refuses invalid sampling before tokenizing")
    func generatorRefuses() async throws {
        let model = try LanguageModel(path: HostileModel.path("qwen3-f32"))
        let generator = Generator(model: model, contextLength: 64, threadCount: 1)
        for (_, parameters) in Self.invalid {
            await #expect(throws: LanguageModelError.self) {
                for try await _ in generator.generate(GenerationRequest(prompt: .ids([1, 2]), maxTokens: 2, sampling: parameters)) {}
            }
        }
        await #expect(throws: LanguageModelError.self) {
            for try await _ in generator.generate(GenerationRequest(prompt: .ids([1, 2]), maxTokens: 2, contextShiftKeep: -1)) {}
        }
    }
}
