import Foundation
import Testing

/// `EMBER_INTERLEAVE` is read by the CLI only (the library takes `LoadOptions.interleave`,
/// `MemoryPlan`'s `interleave:` and `EngineConfiguration.interleavesWeights`): `=0` keeps the
/// file's layout, so the plan counts the file's bytes rather than the larger rearranged copies (Q5_0, Q4_K).
@Suite struct InterleaveOptionTests {
    static func weightsBytes(_ environment: [String: String]) throws -> Int {
        let run = try ShellRun("\"$EMBER\" plan --model gemma3 --json", environment: environment, timeout: 120)
        #expect(run.status == 0, "\(run.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        return try #require(object["weights_bytes"] as? Int)
    }

    @Test func environmentReachesThePlan() throws {
        let interleaved = try Self.weightsBytes([:])
        let fileLayout = try Self.weightsBytes(["EMBER_INTERLEAVE": "0"])
        #expect(interleaved > fileLayout, "Q5_0 decoded to bytes and Q4_K's byte-wide scales are larger than the file")
        #expect(try Self.weightsBytes(["EMBER_INTERLEAVE": "1"]) == interleaved)
    }
}
