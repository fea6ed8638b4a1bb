import EmberLM
import Foundation
import Testing

@Suite("Sampler chain")
struct SamplerTests {
    static let logits: [Float] = [1.0, 3.0, 2.0, 3.0, -1.0, 0.5]

    func sample(_ parameters: SamplingParameters, history: [Int32] = [], logits: [Float] = logits) -> Int32 {
        var sampler = Sampler(parameters: parameters)
        for token in history { sampler.accept(token) }
        return logits.withUnsafeBufferPointer { sampler.sample($0) }
    }

    @Test("Greedy takes the largest logit, the lower id on ties")
    func greedy() {
        #expect(sample(.greedy) == 1)
        #expect([Float](repeating: 0, count: 4).withUnsafeBufferPointer { Sampler.argmax($0) } == 0)
    }

    @Test("Penalties change the greedy choice")
    func penalties() {
        var parameters = SamplingParameters.greedy
        parameters.repetitionPenalty = 2
        #expect(sample(parameters, history: [1]) == 3)
        parameters.repetitionPenalty = 1
        parameters.presencePenalty = 0.5
        #expect(sample(parameters, history: [1, 3]) == 2 || sample(parameters, history: [1, 3]) == 1)
        parameters.presencePenalty = 0
        parameters.frequencyPenalty = 1.5
        #expect(sample(parameters, history: [1, 3, 3]) == 2)
    }

    @Test("The same seed gives the same tokens; top-k 1 is greedy")
    func seeded() {
        let parameters = SamplingParameters(temperature: 1.0, topK: 0, topP: 1, minP: 0, seed: 42)
        var first = Sampler(parameters: parameters), second = Sampler(parameters: parameters)
        let a = (0..<50).map { _ in Self.logits.withUnsafeBufferPointer { first.sample($0) } }
        let b = (0..<50).map { _ in Self.logits.withUnsafeBufferPointer { second.sample($0) } }
        #expect(a == b)
        #expect(Set(a).count > 1, "temperature 1 over close logits should vary")
        #expect(sample(SamplingParameters(temperature: 1, topK: 1, topP: 1, minP: 0, seed: 7)) == 1)
    }

    @Test("Top-k, top-p and min-p keep only likely tokens")
    func truncation() {
        for seed in 0..<200 {
            let token = sample(SamplingParameters(temperature: 1, topK: 2, topP: 1, minP: 0, seed: UInt64(seed)))
            #expect(token == 1 || token == 3)
            let nucleus = sample(SamplingParameters(temperature: 1, topK: 0, topP: 0.5, minP: 0, seed: UInt64(seed)))
            #expect(nucleus == 1 || nucleus == 3, "top-p 0.5 keeps the two tied top tokens at most")
            let minimum = sample(SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0.5, seed: UInt64(seed)))
            #expect([1, 2, 3].contains(minimum))
        }
    }

    @Test("Draws follow the temperature-scaled distribution")
    func distribution() {
        var sampler = Sampler(parameters: SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0, seed: 3))
        let logits: [Float] = [0, log(3)]
        var counts = [0, 0]
        for _ in 0..<20_000 { counts[Int(logits.withUnsafeBufferPointer { sampler.sample($0) })] += 1 }
        let share = Double(counts[1]) / 20_000
        #expect(abs(share - 0.75) < 0.02, "p(1) = \(share), expected 0.75")
    }
}
