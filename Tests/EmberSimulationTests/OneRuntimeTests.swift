import EmberCore
import EmberDevice
import EmberLM
import EmberScheduler
@testable import EmberSimulation
import Foundation
import Synchronization
import Testing

/// Thermal and power readings that never change: the app path's scripted sources.
private struct ScriptedSources: ThermalSource, PowerSource, Sendable {
    var thermalStatus: ThermalStatus { .none }
    func thermalHeadroom(forecastSeconds: Double) -> Double { 0.2 }
    var batteryPercent: Double { 80 }
    var isCharging: Bool { false }
    var isPowerSaveMode: Bool { false }
}

/// A clock that moves 5 ms each time it is read.
private final class ScriptedClock: Sendable {
    private let seconds = Mutex(0.0)
    func read() -> Double { seconds.withLock { $0 += 0.005; return $0 } }
}

/// The decisions a policy made once its requests were visible, in order (shared with the test
/// after the policy moved into a scheduler).
private final class DecisionLog: Sendable {
    private let entries = Mutex<[String]>([])
    func append(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// Waits for both requests, then prefills them in chunks of 7 tokens, most recent arrival first,
/// and decodes every prefilled request together: every kind of step, decided from the queue alone.
private struct TurnPolicy: SchedulingPolicy {
    let log: DecisionLog
    var started = false
    var name: String { "turns" }

    mutating func decide(_ context: SchedulingContext) -> SchedulingDecision {
        guard started || context.pending.count >= 2 else { return .idle(until: context.time + 1, reason: .noWork) }
        guard !context.pending.isEmpty else { return .idle(until: .infinity, reason: .noWork) }
        started = true
        let decision: SchedulingDecision
        if let unprefilled = context.pending.filter({ !$0.isPrefilled || $0.prefilledTokens == 0 }).max(by: { $0.id < $1.id }) {
            decision = .run(id: unprefilled.id, threads: 2, hint: .none, chunk: 7)
        } else if context.pending.count > 1 {
            decision = .decodeBatch(ids: context.pending.map(\.id), threads: 2, hint: .none)
        } else {
            decision = .run(id: context.pending[0].id, threads: 2, hint: .none, chunk: nil)
        }
        // Prompt lengths are estimates until a request starts (and the two paths estimate differently).
        let progress = context.pending.map {
            "\($0.id):\($0.prefilledTokens)/\($0.prefilledTokens > 0 ? String($0.promptTokens) : "?")+\($0.generatedTokens)"
        }
        log.append("\(decision) [\(progress.joined(separator: " "))]")
        return decision
    }
}

@Suite(.serialized) struct OneRuntimeTests {
    static let prompts = ["Name three colours of the rainbow.", "What is the capital of France?"]
    static let maxTokens = 12

    static func modelPath() throws -> String {
        let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory() + "/.cache/ember/models"
        let path = directory + "/SmolLM2-135M-Instruct.Q4_1.gguf"
        try #require(FileManager.default.fileExists(atPath: path), "SmolLM2 is missing at \(path); run `ember models fetch smollm2`")
        return path
    }

    /// The same requests, policy and model (SmolLM2, greedy) through the app's `TokenScheduler`
    /// on a scripted wall clock and through `SimulationRunner` on a simulated phone: one executor,
    /// so the same decisions (with the same progress seen at each) and the same tokens.
    @Test func appAndSimulatorRunTheSameDecisionsAndTokens() async throws {
        let model = try LanguageModel(path: Self.modelPath())

        // The app path.
        let appLog = DecisionLog()
        let clock = ScriptedClock()
        let scheduler = TokenScheduler(model: model, policy: TurnPolicy(log: appLog), thermal: ScriptedSources(),
                                       power: ScriptedSources(), threadCount: 2, maximumSessions: 2, clock: { clock.read() })
        let streams = Self.prompts.map {
            scheduler.submit(ScheduledRequest(prompt: .chat([.init(role: .user, content: $0)]), maxTokens: Self.maxTokens,
                                              sampling: .greedy))
        }
        var appTokens: [[String]] = []
        var appReasons: [StopReason] = []
        for stream in streams {
            var texts: [String] = []
            for try await event in stream {
                if case .token(let id, let text) = event, id >= 0 { texts.append(text) }
                if case .finished(let reason, _) = event { appReasons.append(reason) }
            }
            appTokens.append(texts)
        }
        scheduler.stop()

        // The simulator path.
        let scenario = try SimulationSupport.scenario(json: """
            {"name": "two-chats", "description": "two chats at once", "duration_s": 60, "start": {"battery_pct": 80, "ambient_c": 25},
             "events": [\(Self.prompts.map { "{\"at_s\": 0, \"type\": \"chat\", \"prompt\": \"\($0)\", \"max_tokens\": \(Self.maxTokens)}" }
                .joined(separator: ", "))]}
            """)
        let runner = SimulationRunner(profile: try SimulationSupport.profile("flagship-android"), scenario: scenario,
                                      workload: SimulationSupport.workload)
        let simulatorLog = DecisionLog()
        var policy = TurnPolicy(log: simulatorLog)
        var engine = LanguageModelEngine(model: model, sampling: .greedy, threadCount: 2)
        var simulatorTokens: [[String]] = Self.prompts.map { _ in [] }
        let result = try runner.run(policy: &policy, engine: &engine) { request, text in simulatorTokens[request.id].append(text) }

        #expect(appLog.all.contains { $0.hasPrefix("decodeBatch") }, "the requests shared decode steps")
        #expect(appLog.all.count > 2 * Self.prompts.count)
        #expect(appLog.all == simulatorLog.all)
        #expect(appTokens == simulatorTokens)
        #expect(appTokens.allSatisfy { !$0.isEmpty })
        #expect(result.requests.map(\.generatedTokens) == appTokens.map(\.count))
        #expect(appReasons.count == Self.prompts.count)
    }

    /// An engine error ends the simulation with that error (it used to end the request quietly).
    @Test func simulatorSurfacesEngineErrors() throws {
        struct Broken: Error, Equatable {}
        struct FailingEngine: TokenEngine {
            var tokens = 0
            func begin(_ id: Int, _ request: SimulatedRequest) -> Int { request.promptTokens }
            func prefill(_ id: Int, tokens: Int, threads: Int) {}
            mutating func next(_ id: Int, threads: Int) throws -> GeneratedToken? {
                tokens += 1
                if tokens == 3 { throw Broken() }
                return GeneratedToken(id: 0, text: "")
            }
            func end(_ id: Int) -> String { "" }
        }
        let scenario = try SimulationSupport.scenario(json: """
            {"name": "one-chat", "description": "one chat", "duration_s": 60, "start": {"battery_pct": 80, "ambient_c": 25},
             "events": [{"at_s": 0, "type": "chat", "prompt_tokens": 20, "response_tokens": 10, "max_tokens": 10}]}
            """)
        let runner = SimulationRunner(profile: try SimulationSupport.profile("flagship-android"), scenario: scenario,
                                      workload: SimulationSupport.workload)
        var policy = RacePolicy()
        var engine = FailingEngine()
        #expect(throws: Broken.self) { try runner.run(policy: &policy, engine: &engine) }
        var costModel = CostModelEngine()
        #expect(try runner.run(policy: &policy, engine: &costModel).requests[0].generatedTokens == 10)
    }
}
