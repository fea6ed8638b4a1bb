import Foundation
import Testing

/// A short fuzz campaign in every test run (`make fuzz` runs the long one): mutated GGUF metadata
/// and bytes, containers, profiles, scenarios and command lines through the real commands.
@Suite("fuzzing the CLI", .serialized)
struct FuzzTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("600 seeded cases: no crash, hang over 10 s, memory peak over 1 GiB, early exit or replaced device")
    func shortCampaign() throws {
        let output = try CommandContractTests.run([
            "fuzz", "--seed", "20261207", "--executions", "600", "--workers", "2", "--json",
            "--fixtures", Self.repository.appendingPathComponent("Tests/Fixtures/tiny-models").path,
            "--profiles", Self.repository.appendingPathComponent("Profiles").path,
        ])
        let summary = try #require(output.json, "fuzz printed no JSON: \(output.standardOutput) \(output.standardError)")
        #expect(summary["executions"] as? Int == 600, "\(output.standardOutput)")
        for field in ["crashes", "hangs", "memory_peaks_over_limit", "unexpected_exits", "destroyed_devices", "setup_errors"] {
            #expect(summary[field] as? Int == 0, "\(field): \(output.standardOutput)")
        }
        // Every kind of input was exercised.
        let kinds = try #require(summary["by_kind"] as? [String: Int])
        #expect(Set(kinds.keys) == ["gguf-metadata", "gguf-bytes", "container", "profile", "scenario", "arguments"])
        #expect(output.status == 0)
    }

    @Test("a case replays: the same seed and index give the same command line")
    func replayIsDeterministic() throws {
        let arguments = ["fuzz", "--seed", "5", "--replay", "17",
                         "--fixtures", Self.repository.appendingPathComponent("Tests/Fixtures/tiny-models").path,
                         "--profiles", Self.repository.appendingPathComponent("Profiles").path]
        func commandLine() throws -> String {
            let output = try CommandContractTests.run(arguments)
            let line = try #require(output.standardOutput.split(separator: "\n").first { $0.hasPrefix("case 17") })
            // The scratch folder differs per run; the arguments after it must not.
            return line.replacingOccurrences(of: #"/[^ "]*ember-fuzz-[^/]+/"#, with: "/", options: .regularExpression)
        }
        #expect(try commandLine() == commandLine())
    }
}
