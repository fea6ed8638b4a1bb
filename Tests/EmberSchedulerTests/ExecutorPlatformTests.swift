import EmberCore
import EmberLM
import EmberScheduler
import Foundation
import Synchronization
import Testing

/// A phone with its screen off and eight cores, as the app's sources report it.
private struct ScreenOffPlatform: ThermalSource, PowerSource, DeviceStateSource, Sendable {
    var thermalStatus: ThermalStatus { .none }
    func thermalHeadroom(forecastSeconds: Double) -> Double { 0.2 }
    var batteryPercent: Double { 80 }
    var isCharging: Bool { true }
    var isPowerSaveMode: Bool { false }
    var isScreenOn: Bool { false }
    var availableCores: Int? { 8 }
}

/// Race, noting the screen state and cores of every context it sees.
private struct ContextLog: SchedulingPolicy {
    final class Seen: Sendable {
        private let values = Mutex<[String]>([])
        func append(_ value: String) { values.withLock { $0.append(value) } }
        var all: [String] { values.withLock { $0 } }
    }

    let seen = Seen()
    var name: String { "context-log" }

    mutating func decide(_ context: SchedulingContext) -> SchedulingDecision {
        seen.append("screen \(context.isScreenOn) cores \(context.availableCores) threads \(context.maximumThreads)")
        return RacePolicy().decide(context)
    }
}

@Suite(.serialized) struct ExecutorPlatformTests {
    @Test func schedulerPassesTheScreenAndCoresItsSourcesKnow() async throws {
        let model = try LanguageModel(path: modelPath())
        let policy = ContextLog()
        let scheduler = TokenScheduler(model: model, policy: policy, thermal: ScreenOffPlatform(), power: ScreenOffPlatform(),
                                       threadCount: 2)
        for try await _ in scheduler.submit(ScheduledRequest(prompt: .text("Hello"), maxTokens: 2, sampling: .greedy)) {}
        #expect(!policy.seen.all.isEmpty)
        #expect(policy.seen.all.allSatisfy { $0 == "screen false cores 8 threads 2" })
    }

    /// An engine error ends that request's stream with the error; the scheduler goes on serving.
    @Test func engineErrorEndsTheRequestWithTheError() async throws {
        let model = try LanguageModel(path: modelPath())
        let platform = LivePlatform()
        let scheduler = TokenScheduler(model: model, policy: RacePolicy(), thermal: platform, power: platform, threadCount: 1,
                                       contextLength: 16)
        let long = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 8)
        await #expect(throws: LanguageModelError.self) {
            for try await _ in scheduler.submit(ScheduledRequest(prompt: .text(long), maxTokens: 4, sampling: .greedy)) {}
        }
        var reason: StopReason?
        for try await event in scheduler.submit(ScheduledRequest(prompt: .text("Hi"), maxTokens: 3, sampling: .greedy)) {
            if case .finished(let stop, _) = event { reason = stop }
        }
        #expect(reason != nil)
    }
}
