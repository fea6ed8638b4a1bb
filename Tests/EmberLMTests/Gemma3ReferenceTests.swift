import EmberLM
import Foundation
import Testing

/// Gemma 3 270M Q4_K_M against llama.cpp's outputs on the same file.
@Suite("Gemma 3 matches llama.cpp", .serialized)
struct Gemma3ReferenceTests {
    @Test("Teacher-forced argmax and top-5 logits")
    func teacherForced() throws {
        let model = try LanguageModel(path: TestSupport.modelPath("gemma3"))
        let reference = try ReferenceFile.load("llamacpp-gemma3.json")
        let report = try TeacherForcing.compare(model: model, reference: reference, threadCount: 2)
        print("gemma3 teacher-forced: \(report)")
        #expect(report.argmaxAgreement >= 0.95)
        #expect(report.confidentDisagreements == 0, "argmax differs where llama.cpp's top-1 leads by ≥ 1.0")
        #expect(report.medianLogitError <= 0.35)
        #expect(report.percentile99LogitError <= 1.2)
    }

    @Test("Greedy 32-token continuations fork only at near-ties")
    func greedyContinuations() async throws {
        let model = try LanguageModel(path: TestSupport.modelPath("gemma3"))
        let reference = try ReferenceFile.load("llamacpp-gemma3.json")
        let report = try await TeacherForcing.greedy(model: model, reference: reference, threadCount: 2)
        print("gemma3 greedy: \(report.identical)/\(report.total) identical; forks at gaps \(report.forkGaps)")
        for gap in report.forkGaps {
            #expect(gap < 1.0, "a greedy continuation forked where llama.cpp's top two are \(gap) apart")
        }
    }

    @Test("Perplexity of GPL-3 at context 512 is within 1% of llama.cpp's 13.9062")
    func perplexity() throws {
        let model = try LanguageModel(path: TestSupport.modelPath("gemma3"))
        let text = try String(contentsOfFile: "/usr/share/common-licenses/GPL-3", encoding: .utf8)
        let result = try Perplexity.measure(model: model, text: text, contextLength: 512, threadCount: 2)
        print("gemma3 perplexity: \(result.perplexity) over \(result.chunks) chunks")
        #expect(result.chunks == 14)
        #expect(abs(result.perplexity - 13.9062) / 13.9062 <= 0.01)
    }
}
