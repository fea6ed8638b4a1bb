import Foundation
import Testing

/// `ember logits --prefill N`: the first N ids as one batch, each later id as a one-token step —
/// how a reference run that decoded its prompt and then generated is teacher-forced.
@Suite("ember logits --prefill", .serialized)
struct LogitsPrefillTests {
    static let prompt = [504, 3575, 282, 4649, 314]  // "The capital of France is"

    static func top(_ arguments: [String]) throws -> [[[Double]]] {
        let result = try CommandContractTests.run(arguments)
        #expect(result.status == 0, "\(arguments): \(result.standardError)")
        return try #require(result.json?["top"] as? [[[Double]]])
    }

    @Test("the prompt's rows are the batch's; each later row is generation's greedy step")
    func stepsFollowGeneration() throws {
        let generated = try CommandContractTests.run(["generate", "--model", "smollm2", "--prompt", "The capital of France is",
                                                      "--temperature", "0", "--max-tokens", "6", "--ignore-eos", "--json", "--threads", "1"])
        let ids = try #require(generated.json?["ids"] as? [Int])
        #expect(ids.count == 6)
        let all = (Self.prompt + ids).map(String.init).joined(separator: ",")
        let stepped = try Self.top(["logits", "--model", "smollm2", "--ids", all, "--top", "2", "--prefill", "5", "--threads", "1"])
        #expect(stepped.count == 11)
        // Row 4 (after the prompt) predicts the first generated id; row 4 + k the (k+1)-th, each a one-token step.
        #expect(stepped[4..<10].map { Int($0[0][0]) } == ids)
        let prompt = try Self.top(["logits", "--model", "smollm2", "--ids", Self.prompt.map(String.init).joined(separator: ","),
                                   "--top", "2", "--threads", "1"])
        #expect(Array(stepped[..<5]) == prompt)
        // Every id a step gives the same rows for the first id (a batch of one is a step).
        let allSteps = try Self.top(["logits", "--model", "smollm2", "--ids", all, "--top", "2", "--prefill", "0", "--threads", "1"])
        #expect(allSteps.count == 11 && allSteps[0] == stepped[0])
    }

    @Test("--prefill outside 0...ids is one error line", arguments: ["3", "-1"])
    func outOfRange(prefill: String) throws {
        let line = try ModelInputTests.errorLine(["logits", "--model", "smollm2", "--ids", "1,2", "--prefill=\(prefill)"])
        #expect(line.contains("--prefill must be between 0 and the 2 ids"), "\(line)")
    }
}
