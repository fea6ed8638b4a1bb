import Foundation
import Testing

/// Offline summarization of notes by the model, end to end through the CLI.
@Suite("summarization", .serialized)
struct SummarizationTests {
    static let dataset = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/notes-dataset").path

    @Test func notesSummarizeRunsTheModelAndStoresTheSummaryWithItsName() throws {
        let database = NSTemporaryDirectory() + "ember-summary-\(UUID().uuidString).db"
        defer { try? FileManager.default.removeItem(atPath: database) }
        let added = try CommandContractTests.run(["notes", "--db", database, "add", "--title", "Dentist", "--body",
            "Call the dentist on Monday to move the cleaning from Thursday to next week; the car is at the garage until Friday.", "--json"])
        #expect(added.status == 0, "\(added.standardError)")
        let id = try #require(added.json?["id"] as? Int)
        let summarized = try CommandContractTests.run(["notes", "--db", database, "summarize", String(id), "--model", "smollm2", "--json"])
        #expect(summarized.status == 0, "\(summarized.standardError)")
        let shown = try CommandContractTests.run(["notes", "--db", database, "show", String(id), "--json"])
        let summaries = try #require(shown.json?["summaries"] as? [[String: Any]])
        #expect(summaries.first?["model"] as? String == "smollm2")
        #expect(((summaries.first?["text"] as? String) ?? "").count > 10)
    }

    @Test func evalSummarizeScoresAndChargesThePhone() throws {
        let result = try CommandContractTests.run(["eval", "summarize", "--dataset", Self.dataset, "--model", "smollm2",
                                                   "--profile", "flagship-android", "--limit", "3", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let json = try #require(result.json)
        for key in ["rouge1", "rouge2", "rougeL", "latency_s_mean", "energy_j_per_summary", "battery_pct_per_summary"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        let rouge1 = try #require(json["rouge1"] as? Double)
        #expect(rouge1 > 0.1 && rouge1 < 1, "ROUGE-1 \(rouge1)")
        #expect((json["energy_j_per_summary"] as? Double ?? 0) > 0)
        #expect((json["summaries"] as? [Any])?.count == 3)
    }

    @Test func aLongNoteMakesOneShortPrompt() throws {
        let path = NSTemporaryDirectory() + "ember-long-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let paragraph = "The committee reviewed the harbour renovation budget, the timeline for the new ferry terminal, and the "
            + "plan to replace the old lighting along the promenade with efficient lamps before the summer festival.\n\n"
        try ("---\ntitle: Harbour committee\n---\n" + String(repeating: paragraph, count: 70)).write(toFile: path + "/01-harbour.md", atomically: true, encoding: .utf8)
        try "The committee reviewed the harbour budget, ferry terminal timeline and promenade lighting.".write(
            toFile: path + "/01-harbour.summary.txt", atomically: true, encoding: .utf8)
        let result = try CommandContractTests.run(["eval", "summarize", "--dataset", path, "--model", "smollm2", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let summary = try #require((result.json?["summaries"] as? [[String: Any]])?.first)
        // About 2,500 words of note; the model reads only the extract's key points (≈ 100 words).
        let promptTokens = try #require(summary["prompt_tokens"] as? Int)
        #expect(promptTokens > 20 && promptTokens < 400, "\(promptTokens) prompt tokens")
        let pipeline = try #require(summary["abstractive"] as? [String: Any])
        #expect(((pipeline["summary"] as? String) ?? "").count > 10)
    }
}
