import Foundation
import Testing

/// Budgets are planned before loading and honoured: the process's measured peak resident set stays
/// under the plan, and the plan under the budget.
@Suite("memory budgets", .serialized)
struct MemoryBudgetTests {
    struct Case: CustomStringConvertible, Sendable {
        var model: String
        var budget: String
        var budgetBytes: Int
        var context: Int
        var stream: Bool
        var description: String { "\(model) \(budget) context \(context)\(stream ? " streamed" : "")" }
    }

    static let mebibyte = 1 << 20
    static let cases: [Case] = [
        Case(model: "smollm2", budget: "160MiB", budgetBytes: 160 * mebibyte, context: 2048, stream: false),
        Case(model: "smollm2", budget: "200MiB", budgetBytes: 200 * mebibyte, context: 2048, stream: false),
        Case(model: "smollm2", budget: "140MiB", budgetBytes: 140 * mebibyte, context: 1024, stream: false),
        Case(model: "smollm2", budget: "64MiB", budgetBytes: 64 * mebibyte, context: 2048, stream: true),
        Case(model: "smollm2", budget: "48MiB", budgetBytes: 48 * mebibyte, context: 256, stream: true),
        Case(model: "smollm2", budget: "100MiB", budgetBytes: 100 * mebibyte, context: 1024, stream: true),
        Case(model: "gemma3", budget: "420MiB", budgetBytes: 420 * mebibyte, context: 2048, stream: false),
        Case(model: "gemma3", budget: "360MiB", budgetBytes: 360 * mebibyte, context: 512, stream: false),
        Case(model: "gemma3", budget: "160MiB", budgetBytes: 160 * mebibyte, context: 1024, stream: true),
        Case(model: "gemma3", budget: "100MiB", budgetBytes: 100 * mebibyte, context: 512, stream: true),
    ]

    static let prompt = String(repeating: "The lighthouse keeper watched the storm roll in over the grey sea. ", count: 12)

    @Test(arguments: cases)
    func budgetIsHonoured(_ budgetCase: Case) throws {
        var arguments = ["generate", "--model", budgetCase.model, "--prompt", Self.prompt, "--max-tokens", "24",
                         "--temperature", "0", "--context", String(budgetCase.context), "--memory-budget", budgetCase.budget, "--json"]
        if budgetCase.stream { arguments.append("--stream-weights") }
        let result = try CommandContractTests.run(arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let stats = try #require(result.json?["stats"] as? [String: Any])
        let peak = try #require(stats["peak_rss_bytes"] as? Int)
        let planned = try #require(stats["planned_bytes"] as? Int)
        #expect(peak <= budgetCase.budgetBytes, "peak \(peak) over the budget \(budgetCase.budgetBytes)")
        #expect(peak <= planned, "peak \(peak) over the plan \(planned)")
        #expect(planned <= budgetCase.budgetBytes)
        #expect((stats["generated_tokens"] as? Int ?? 0) > 0)
    }

    /// The engine an app embeds, planned at 160 MiB for two requests at once (a chat turn and a
    /// background summary, each its own KV cache, one shared thread pool): the process's peak stays
    /// under the plan and the plan under the budget.
    @Test func engineWithTwoConcurrentRequestsStaysWithinItsBudget() throws {
        let result = try CommandContractTests.run(["engine", "--model", "smollm2", "--memory-budget", "160MiB", "--requests", "2",
                                                   "--max-tokens", "48", "--threads", "2", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let json = try #require(result.json)
        let peak = try #require(json["peak_rss_bytes"] as? Int)
        let planned = try #require(json["planned_bytes"] as? Int)
        #expect(json["sessions"] as? Int == 2)
        #expect(peak <= 160 * Self.mebibyte, "peak \(peak) over the budget")
        #expect(peak <= planned, "peak \(peak) over the plan \(planned)")
        #expect(planned <= 160 * Self.mebibyte)
        let requests = try #require(json["requests"] as? [[String: Any]])
        #expect(requests.map { $0["kind"] as? String } == ["chat", "summary"])
        #expect(requests.allSatisfy { ($0["generated_tokens"] as? Int ?? 0) > 0 })
    }

    @Test func streamingGivesTheSameTokensAsNoBudget() throws {
        let common = ["generate", "--model", "smollm2", "--chat", "--prompt", "Write a short story about a lighthouse.",
                      "--max-tokens", "48", "--temperature", "0", "--json"]
        let plain = try CommandContractTests.run(common)
        let streamed = try CommandContractTests.run(common + ["--memory-budget", "64MiB", "--stream-weights"])
        #expect(plain.status == 0 && streamed.status == 0, "\(streamed.standardError)")
        let plainIDs = try #require(plain.json?["ids"] as? [Int])
        let streamedIDs = try #require(streamed.json?["ids"] as? [Int])
        #expect(plainIDs == streamedIDs)
        let stats = try #require(streamed.json?["stats"] as? [String: Any])
        #expect((stats["peak_rss_bytes"] as? Int ?? .max) <= 64 * Self.mebibyte)
    }

    @Test(arguments: [["--model", "smollm2", "--memory-budget", "20MiB"], ["--model", "gemma3", "--memory-budget", "200MiB"]])
    func impossibleBudgetFailsBeforeLoading(_ options: [String]) throws {
        let start = Date()
        let result = try CommandContractTests.run(["generate", "--prompt", "hi"] + options)
        #expect(result.status != 0)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("does not fit the memory budget"), "\(result.standardError)")
        #expect(Date().timeIntervalSince(start) < 5, "refused only after loading?")
    }

    @Test func planJSONHasTheContractFields() throws {
        let result = try CommandContractTests.run(["plan", "--model", "smollm2", "--memory-budget", "160MiB", "--context", "2048", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let json = try #require(result.json)
        for key in ["weights_bytes", "kv_cache_bytes", "scratch_bytes", "overhead_bytes", "total_bytes", "budget_bytes",
                    "fits", "context", "kv_type", "stream_weights"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["fits"] as? Bool == true)
        let total = try #require(json["total_bytes"] as? Int)
        let parts = ["weights_bytes", "kv_cache_bytes", "scratch_bytes", "overhead_bytes"].compactMap { json[$0] as? Int }.reduce(0, +)
        #expect(total == parts)
        let refused = try CommandContractTests.run(["plan", "--model", "smollm2", "--memory-budget", "10MiB", "--json"])
        #expect(refused.status != 0)
        #expect(refused.json?["fits"] as? Bool == false)
    }

    @Test func generateFromAContainerGivesTheGGUFsTokens() throws {
        let path = NSTemporaryDirectory() + "ember-container-\(UUID().uuidString).ggz"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let packed = try CommandContractTests.run(["pack", "--model", "smollm2", "--output", path])
        #expect(packed.status == 0, "\(packed.standardError)")
        let common = ["generate", "--chat", "--prompt", "Write a haiku about rain.", "--max-tokens", "32", "--temperature", "0", "--json"]
        let plain = try CommandContractTests.run(common + ["--model", "smollm2"])
        let fromContainer = try CommandContractTests.run(common + ["--model", path])
        #expect(fromContainer.status == 0, "\(fromContainer.standardError)")
        let plainIDs = try #require(plain.json?["ids"] as? [Int])
        #expect(plainIDs == (fromContainer.json?["ids"] as? [Int]))
    }

    @Test func contextShiftKeepsGeneratingPastAFullContext() throws {
        let common = ["generate", "--model", "smollm2", "--prompt", "Once upon a time", "--max-tokens", "200", "--context", "64",
                      "--temperature", "0", "--ignore-eos", "--json"]
        let stopped = try CommandContractTests.run(common)
        #expect((stopped.json?["stats"] as? [String: Any])?["stop_reason"] as? String == "contextFull")
        let shifted = try CommandContractTests.run(common + ["--context-shift", "4"])
        let stats = try #require(shifted.json?["stats"] as? [String: Any])
        #expect(stats["generated_tokens"] as? Int == 200)
        #expect(stats["stop_reason"] as? String == "maxTokens")
    }
}
