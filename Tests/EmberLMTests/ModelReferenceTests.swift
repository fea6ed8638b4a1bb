import EmberLM
import Foundation
import Testing

/// SmolLM2-135M Q4_1 and Gemma 3 270M Q4_K_M against llama.cpp's outputs on the same files.
@Suite("Models match llama.cpp", .serialized)
struct ModelReferenceTests {
    /// A model and llama.cpp's perplexity of GPL-3 at context 512 for it.
    static let models: [(alias: String, perplexity: Double)] = [("smollm2", 18.3914), ("gemma3", 13.9062)]
    static let aliases = models.map(\.alias)

    @Test("Teacher-forced argmax and top-5 logits", arguments: aliases)
    func teacherForced(alias: String) throws {
        let model = try LanguageModel(path: TestSupport.modelPath(alias))
        let reference = try ReferenceFile.load("llamacpp-\(alias).json")
        let report = try TeacherForcing.compare(model: model, reference: reference, threadCount: 2)
        print("\(alias) teacher-forced: \(report)")
        #expect(report.argmaxAgreement >= 0.95)
        #expect(report.confidentDisagreements == 0, "argmax differs where llama.cpp's top-1 leads by ≥ 1.0")
        #expect(report.medianLogitError <= 0.35)
        #expect(report.percentile99LogitError <= 1.2)
    }

    @Test("Greedy 32-token continuations fork only at near-ties", arguments: aliases)
    func greedyContinuations(alias: String) async throws {
        let model = try LanguageModel(path: TestSupport.modelPath(alias))
        let reference = try ReferenceFile.load("llamacpp-\(alias).json")
        let report = try await TeacherForcing.greedy(model: model, reference: reference, threadCount: 2)
        print("\(alias) greedy: \(report.identical)/\(report.total) identical; forks at gaps \(report.forkGaps)")
        for gap in report.forkGaps {
            #expect(gap < 1.0, "a greedy continuation forked where llama.cpp's top two are \(gap) apart")
        }
    }

    @Test("Perplexity of GPL-3 at context 512 is within 1% of llama.cpp's", arguments: models.map(\.alias))
    func perplexity(alias: String) throws {
        let expected = try #require(Self.models.first { $0.alias == alias }).perplexity
        let model = try LanguageModel(path: TestSupport.modelPath(alias))
        let text = try String(contentsOfFile: "/usr/share/common-licenses/GPL-3", encoding: .utf8)
        let result = try Perplexity.measure(model: model, text: text, contextLength: 512, threadCount: 2)
        print("\(alias) perplexity: \(result.perplexity) over \(result.chunks) chunks (llama.cpp \(expected))")
        #expect(result.chunks == 14)
        #expect(abs(result.perplexity - expected) / expected <= 0.01)
    }
}
