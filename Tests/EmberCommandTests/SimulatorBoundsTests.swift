import Foundation
import Testing

/// `ember sim` refuses settings and files that would exhaust memory or never end: one line on
/// stderr, a non-zero exit, at once.
@Suite("ember sim bounds", .serialized)
struct SimulatorBoundsTests {
    func expectOneLineError(_ arguments: [String], mentioning text: String) throws {
        let start = Date()
        let result = try CommandContractTests.run(arguments)
        #expect(Date().timeIntervalSince(start) < 30)
        #expect(result.status != 0)
        CommandContractTests.expectErrorOutput(result, arguments)
        let lines = result.standardError.split(separator: "\n").filter { !$0.isEmpty && !$0.hasPrefix("Usage:") && !$0.hasPrefix("  See") }
        #expect(lines.count == 1, "stderr: \(result.standardError)")
        #expect(result.standardError.contains(text), "stderr: \(result.standardError)")
    }

    func scenarioFile(_ events: String, duration: Int = 100) throws -> String {
        let path = NSTemporaryDirectory() + "ember-bounds-\(UUID().uuidString).json"
        try """
        {"name":"bounds","description":"","duration_s":\(duration),"start":{"battery_pct":70,"ambient_c":25},"events":[\(events)]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(arguments: ["1e-9", "1e-6", "0"])
    func sampleIntervalBelowTheResolution(_ interval: String) throws {
        try expectOneLineError(["sim", "--cost-model", "--json", "--model-spec", "smollm2-135m-q4_1", "--sample-interval", interval],
                               mentioning: "--sample-interval")
    }

    @Test func repeatEveryNanosecond() throws {
        let path = try scenarioFile("{\"at_s\":0,\"type\":\"chat\",\"prompt_tokens\":10,\"repeat_every_s\":1e-9,\"until_s\":100}")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try expectOneLineError(["sim", "--cost-model", "--model-spec", "smollm2-135m-q4_1", "--scenario", path],
                               mentioning: "events[0].repeat_every_s")
    }

    @Test func repeatsBeyondTheRequestLimit() throws {
        let path = try scenarioFile("{\"at_s\":0,\"type\":\"chat\",\"prompt_tokens\":10,\"repeat_every_s\":0.01,\"until_s\":7200}", duration: 7200)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try expectOneLineError(["sim", "--cost-model", "--model-spec", "smollm2-135m-q4_1", "--scenario", path],
                               mentioning: "at most 1000 ")
    }

    @Test(arguments: [["sim", "sweep", "--profiles", "", "--scenarios", ""],
                      ["sim", "sweep", "--profiles", "flagship-android", "--scenarios", ","],
                      ["sim", "matrix", "--profiles", "", "--model-spec", "smollm2-135m-q4_1"],
                      ["sim", "compare", "--policies", "", "--model-spec", "smollm2-135m-q4_1"]])
    func emptyListsAreErrors(_ arguments: [String]) throws {
        try expectOneLineError(arguments, mentioning: "names nothing")
    }

    @Test func compareDrainAddsTheDrainedFieldsAfterTheOthers() throws {
        // A 600-token reply asked 3 s before the end: cut off there, finished and read in the drain.
        let path = try scenarioFile("{\"at_s\":57,\"type\":\"chat\",\"prompt_tokens\":40,\"response_tokens\":600,\"max_tokens\":600}",
                                    duration: 60)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let base = ["sim", "compare", "--json", "--profile", "low-end-android", "--model-spec", "smollm2-135m-q4_1", "--scenario", path]
        let plain = try CommandContractTests.run(base)
        let drained = try CommandContractTests.run(base + ["--drain"])
        #expect(plain.status == 0 && drained.status == 0, "stderr: \(drained.standardError)")
        let plainRace = try #require((plain.json?["policies"] as? [String: Any])?["race"] as? [String: Any])
        let policies = try #require(drained.json?["policies"] as? [String: [String: Any]])
        #expect(plainRace["drained_end_s"] == nil)
        for name in ["race", "adaptive"] {
            let summary = try #require(policies[name])
            #expect(summary["requests_completed"] as? Int == 0)
            let end = try #require(summary["drained_end_s"] as? Double)
            #expect(end >= 57 + 600 / 5.7 - 1)
            #expect((summary["drained_energy_j"] as? Double ?? 0) > (summary["energy_j"] as? Double ?? .infinity))
            #expect((summary["drained_energy_j_per_request"] as? Double ?? 0) > 0)
        }
    }
}
