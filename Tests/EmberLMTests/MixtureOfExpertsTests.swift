import EmberGGUF
@testable import EmberLM
import Foundation
import Testing

/// The mixture-of-experts block on the tiny qwen3moe model (8 experts, 2 used per token): only the
/// routed experts' bytes are read, a batch reads each chosen expert once, streaming gives the same
/// logits, and the memory plan counts expert tensors as the model holds them.
@Suite struct MixtureOfExpertsTests {
    static func load(_ variant: String, options: LoadOptions = LoadOptions()) throws -> TransformerModel {
        try TestSupport.tinyModel("qwen3moe-\(variant)", options: options)
    }

    static let prompt: [Int32] = [256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100]

    @Test(arguments: ["f32", "q8_0"])
    func decodeReadsOnlyTheRoutedExperts(_ variant: String) throws {
        let model = try Self.load(variant)
        let experts = try #require(model.traits.mixtureOfExperts)
        #expect(experts.expertCount == 8 && experts.usedExpertCount == 2 && experts.expertFeedForwardLength == 96)
        let expertBytes = model.expertWeightBytes
        let layers = model.configuration.layerCount
        let oneExpert = expertBytes / (layers * experts.expertCount)
        // Active bytes: everything but the experts, plus 2 of 8 experts per layer.
        #expect(model.weightBytesPerToken == model.totalWeightBytes - expertBytes + expertBytes * 2 / 8)

        let session = InferenceSession(model: model, contextLength: 64, batchSize: 16, threadCount: 1)
        try session.evaluate(Self.prompt, logits: .none)
        session.resetExpertStatistics()
        try session.evaluate([300 % 272], logits: .last)
        let statistics = session.expertStatistics
        #expect(statistics.routedTokens == layers)
        #expect(statistics.expertRuns == layers * 2)
        #expect(statistics.expertBytesRead == layers * 2 * oneExpert)
        #expect(statistics.expertBytesRead * 4 == expertBytes)
        print("qwen3moe-\(variant): decode step read \(statistics.expertBytesRead) expert bytes of \(expertBytes) (2/8); "
              + "weightBytesPerToken \(model.weightBytesPerToken) active of \(model.totalWeightBytes) total")
    }

    @Test func batchReadsEachChosenExpertOnce() throws {
        let model = try Self.load("q8_0")
        let layers = model.configuration.layerCount
        let session = InferenceSession(model: model, contextLength: 64, batchSize: 64, threadCount: 1)
        let tokens = (0..<48).map { Int32(($0 * 37 + 11) % 272) }
        try session.evaluate(tokens, logits: .none)
        let statistics = session.expertStatistics
        #expect(statistics.routedTokens == layers * tokens.count)
        // 48 tokens × 2 choices over 8 experts: each layer runs at most all 8 experts, once each.
        #expect(statistics.expertRuns <= layers * 8 && statistics.expertRuns >= layers * 2)
        #expect(statistics.expertBytesRead <= model.expertWeightBytes)
        #expect(statistics.expertBytesRead == statistics.expertRuns * model.expertWeightBytes / (layers * 8))
    }

    /// The batch grouped by expert gives the logits of one token at a time.
    @Test func batchedMatchesTokenByToken() throws {
        let model = try Self.load("f32")
        let batched = InferenceSession(model: model, contextLength: 64, batchSize: 64, threadCount: 2)
        let single = InferenceSession(model: model, contextLength: 64, batchSize: 1, threadCount: 1)
        var expected: [[Float]] = []
        try single.evaluate(Self.prompt, logits: .all) { _, logits in expected.append(Array(logits)) }
        var largest: Float = 0
        try batched.evaluate(Self.prompt, logits: .all) { index, logits in
            for (a, b) in zip(logits, expected[index]) { largest = max(largest, abs(a - b)) }
        }
        #expect(largest < 1e-4, "batched vs token-by-token max |Δ| \(largest)")
    }

    @Test func streamingGivesTheSameLogits() throws {
        let resident = try Self.load("q8_0")
        let streamed = try Self.load("q8_0", options: LoadOptions(streamWeights: true))
        var expected: [[Float]] = []
        let session = InferenceSession(model: resident, contextLength: 64, batchSize: 8, threadCount: 1)
        try session.evaluate(Self.prompt, logits: .all) { _, logits in expected.append(Array(logits)) }
        let streamedSession = InferenceSession(model: streamed, contextLength: 64, batchSize: 8, threadCount: 1)
        var largest: Float = 0
        try streamedSession.evaluate(Self.prompt, logits: .all) { index, logits in
            for (a, b) in zip(logits, expected[index]) { largest = max(largest, abs(a - b)) }
        }
        // Rearranged Q8_0 experts and their streamed file layout give the same sums; the F32 router
        // is not rearranged, and its streamed kernel adds in another order (a few ulps).
        #expect(largest <= 1e-5, "streamed vs resident max |Δ| \(largest)")
        #expect(streamedSession.expertStatistics == session.expertStatistics)

        // The file's layout through the plain kernels (EMBER_INTERLEAVE=0) routes the same way.
        let plain = try Self.load("q8_0", options: LoadOptions(interleave: false))
        let plainSession = InferenceSession(model: plain, contextLength: 64, batchSize: 8, threadCount: 1)
        var plainLargest: Float = 0
        try plainSession.evaluate(Self.prompt, logits: .all) { index, logits in
            for (a, b) in zip(logits, expected[index]) { plainLargest = max(plainLargest, abs(a - b)) }
        }
        #expect(plainLargest <= 1e-4, "plain vs rearranged max |Δ| \(plainLargest)")
        #expect(plainSession.expertStatistics == session.expertStatistics)
    }

    @Test func memoryPlanCountsExperts() throws {
        let model = try Self.load("q8_0", options: LoadOptions(interleave: false))
        let file = model.file
        let norms = file.tensors.filter { $0.dimensions.count < 2 || $0.rowCount == 1 }.reduce(0) { $0 + $1.elementCount * 4 }
        // Resident: every expert of every layer (mapped or rearranged: Q8_0 keeps its size).
        let plan = try MemoryPlan.make(file: file, context: 64, batchSize: 16, threadCount: 1, streamWeights: false, interleave: false)
        #expect(plan.weightsBytes == norms + model.totalWeightBytes)
        let interleaved = try MemoryPlan.make(file: file, context: 64, batchSize: 16, threadCount: 1, streamWeights: false, interleave: true)
        #expect(interleaved.weightsBytes == norms + model.totalWeightBytes)
        // Streaming: one layer's attention and router and the few experts brought in at once.
        let streamed = try MemoryPlan.make(file: file, context: 64, batchSize: 16, threadCount: 1, streamWeights: true)
        let largest = model.largestLayerBytes
        #expect(streamed.weightsBytes == norms + largest + largest / 4 + (4 << 20) + (1 << 20))
        let layerExperts = model.expertWeightBytes / model.configuration.layerCount
        #expect(largest < model.totalWeightBytes / model.configuration.layerCount)
        #expect(largest == (model.layerMatrices(0).reduce(0) { $0 + $1.byteCount })
                + layerExperts / 8 * MixtureOfExpertsBlock.streamedResidentExperts)
        // The session allocates what the plan says.
        let session = InferenceSession(model: model, contextLength: 64, batchSize: 16, threadCount: 1)
        #expect(session.scratchByteCount == plan.scratchBytes)
    }
}
