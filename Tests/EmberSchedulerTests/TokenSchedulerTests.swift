import EmberCore
import EmberLM
import EmberScheduler
import Foundation
import Synchronization
import Testing

/// Thermal and power readings a test changes while the scheduler runs.
final class LivePlatform: ThermalSource, PowerSource, DeviceStateSource, Sendable {
    private let forecast = Mutex(0.3)
    /// The environment's share of the forecast: what the phone would be without the app. Heat
    /// above it is the app's (a scripted source; a real phone's is estimated by the policy).
    var environmentHeadroom: Double? { 0.3 }
    var isScreenOn: Bool { true }
    var availableCores: Int? { nil }
    func setForecast(_ value: Double) { forecast.withLock { $0 = value } }
    var thermalStatus: ThermalStatus { .none }
    func thermalHeadroom(forecastSeconds: Double) -> Double { forecast.withLock { forecastSeconds > 0 ? $0 : min($0, 0.5) } }
    var batteryPercent: Double { 80 }
    var isCharging: Bool { false }
    var isPowerSaveMode: Bool { false }
}

func modelPath() throws -> String {
    let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
        ?? NSHomeDirectory() + "/.cache/ember/models"
    let path = directory + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    try #require(FileManager.default.fileExists(atPath: path), "SmolLM2 is missing at \(path); run `ember models fetch smollm2`")
    return path
}

/// A policy that counts the batched decode steps of the policy it wraps.
struct DecisionCounter<Wrapped: SchedulingPolicy>: SchedulingPolicy {
    final class Count: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func increment() { count.withLock { $0 += 1 } }
    }

    var wrapped: Wrapped
    let batchedSteps = Count()
    init(_ wrapped: Wrapped) { self.wrapped = wrapped }
    var name: String { wrapped.name }

    mutating func decide(_ context: SchedulingContext) -> SchedulingDecision {
        let decision = wrapped.decide(context)
        if case .decodeBatch = decision { batchedSteps.increment() }
        return decision
    }

    mutating func record(_ outcome: StepOutcome) { wrapped.record(outcome) }
}

/// A monotonic clock that stands still while the model works: to a policy reading it every step
/// takes no time, as on a machine of any speed. Whether a token runs before its pacing gap is over,
/// or a reader has caught up with a reply, then depends on the policy's decisions alone, not on how
/// fast (or how loaded) the test machine is: a machine decoding slower than the pace leaves no gap
/// on the wall clock, and a scheduler that paces nothing would pass a test of pacing there.
final class ModelTimeExcludingClock: Sendable {
    private struct State {
        var excluded = 0.0
        var stepStart: Double?
    }

    private let state = Mutex(State())
    private static var wall: Double { Double(MonotonicClock.nanoseconds()) / 1e9 }

    /// Wall-clock seconds spent outside the model's steps.
    var now: Double {
        state.withLock { state in
            let wall = Self.wall
            return wall - state.excluded - (state.stepStart.map { wall - $0 } ?? 0)
        }
    }

    func stepBegins() { state.withLock { $0.stepStart = $0.stepStart ?? Self.wall } }

    func stepEnds() {
        state.withLock { state in
            guard let start = state.stepStart else { return }
            state.excluded += Self.wall - start
            state.stepStart = nil
        }
    }
}

/// The policy it wraps, telling `clock` when each step it picks begins (its decision) and ends
/// (its outcome recorded).
struct ModelTimeExcluded<Wrapped: SchedulingPolicy>: SchedulingPolicy {
    var wrapped: Wrapped
    let clock: ModelTimeExcludingClock
    var name: String { wrapped.name }

    mutating func decide(_ context: SchedulingContext) -> SchedulingDecision {
        clock.stepEnds()  // a step that recorded no outcome (its request ended)
        let decision = wrapped.decide(context)
        if case .idle = decision {} else { clock.stepBegins() }
        return decision
    }

    mutating func record(_ outcome: StepOutcome) {
        clock.stepEnds()
        wrapped.record(outcome)
    }
}

@Suite(.serialized) struct TokenSchedulerTests {
    @Test func adaptiveSchedulerPacesDefersAndFinishesEveryRequest() async throws {
        let model = try LanguageModel(path: modelPath())
        let platform = LivePlatform()
        // Cool before the app works; its chat warms the phone (the heat is the app's own, so
        // background work must wait for it to go).
        platform.setForecast(0.3)
        // The shipped policy on a clock that stands still while the model works: its steps take no
        // time, so every token after the thread calibration comes before its pacing gap is over and
        // the reply stays ahead of its reader (tokens a reader has caught up with run without a gap),
        // however slow the test machine is. The wall clock put machine speed into the test: decoding
        // slower than the pace left no gap to pace.
        let clock = ModelTimeExcludingClock()
        let scheduler = TokenScheduler(model: model, policy: ModelTimeExcluded(wrapped: AdaptivePolicy(), clock: clock),
                                       thermal: platform, power: platform, threadCount: 2, clock: { clock.now })
        let chat = scheduler.submit(ScheduledRequest(prompt: .chat([.init(role: .user, content: "Name three colours.")]), maxTokens: 16,
                                                     sampling: .greedy, requestClass: .interactive, ignoreEndOfGeneration: true))
        var background: AsyncThrowingStream<ScheduledEvent, any Error>?
        var chatTokens = 0, chatPaced = 0
        var chatFinished = false
        for try await event in chat {
            switch event {
            case .token:
                chatTokens += 1
                if background == nil {
                    // The chat has warmed the phone; a note to summarize arrives.
                    platform.setForecast(0.8)
                    background = scheduler.submit(ScheduledRequest(prompt: .text("Summarize: the meeting moved to Friday."), maxTokens: 8,
                                                                   sampling: .greedy, requestClass: .background))
                }
            case .paced(.pacing, _): chatPaced += 1
            case .finished: chatFinished = true
            default: break
            }
        }
        #expect(chatFinished && chatTokens > 0)
        #expect(chatPaced > 0, "interactive tokens are paced")
        var deferrals = 0, backgroundTokens = 0
        var reason: StopReason?
        for try await event in try #require(background) {
            switch event {
            case .paced(.thermalDeferral, _):
                deferrals += 1
                platform.setForecast(0.3)  // cool again once it has waited: background runs
            case .token: backgroundTokens += 1
            case .finished(let stop, _): reason = stop
            default: break
            }
        }
        #expect(deferrals > 0, "background work waited while warm")
        #expect(backgroundTokens == 8 && reason == .maxTokens)
    }

    @Test func raceSchedulerMatchesPlainGreedyGeneration() async throws {
        let model = try LanguageModel(path: modelPath())
        let platform = LivePlatform()
        let scheduler = TokenScheduler(model: model, policy: RacePolicy(), thermal: platform, power: platform, threadCount: 2)
        let prompt = Prompt.chat([.init(role: .user, content: "What is the capital of France?")])
        var scheduledIDs: [Int32] = []
        for try await event in scheduler.submit(ScheduledRequest(prompt: prompt, maxTokens: 16, sampling: .greedy)) {
            if case .token(let id, _) = event, id >= 0 { scheduledIDs.append(id) }
        }
        let generator = Generator(model: model, contextLength: 2048, threadCount: 2)
        var plainIDs: [Int32] = []
        for try await event in generator.generate(GenerationRequest(prompt: prompt, maxTokens: 16, sampling: .greedy)) {
            if case .token(let id, _) = event, id >= 0 { plainIDs.append(id) }
        }
        #expect(scheduledIDs == plainIDs)
    }

    /// Background replies decoded together give the tokens each gets alone.
    @Test func batchedBackgroundRepliesMatchPlainGreedyGeneration() async throws {
        let model = try LanguageModel(path: modelPath())
        let platform = LivePlatform()
        var configuration = AdaptivePolicy.Configuration()
        configuration.backgroundTokensPerSecond = 200  // little pacing: the test stays short
        let policy = DecisionCounter(AdaptivePolicy(configuration: configuration))
        let scheduler = TokenScheduler(model: model, policy: policy, thermal: platform, power: platform, threadCount: 2,
                                       maximumSessions: 3)
        let prompts = ["Summarize: the meeting moved to Friday at noon.", "Summarize: buy milk, eggs and bread.",
                       "Summarize: the flight lands at six."]
        let streams = prompts.map {
            scheduler.submit(ScheduledRequest(prompt: .text($0), maxTokens: 24, sampling: .greedy, requestClass: .background,
                                              ignoreEndOfGeneration: true))
        }
        var scheduled: [[Int32]] = []
        for stream in streams {
            var ids: [Int32] = []
            for try await event in stream { if case .token(let id, _) = event, id >= 0 { ids.append(id) } }
            scheduled.append(ids)
        }
        #expect(policy.batchedSteps.value > 0, "background replies shared decode steps")
        let generator = Generator(model: model, contextLength: 2048, threadCount: 2)
        for (index, prompt) in prompts.enumerated() {
            var plain: [Int32] = []
            let request = GenerationRequest(prompt: .text(prompt), maxTokens: 24, sampling: .greedy, ignoreEndOfGeneration: true)
            for try await event in generator.generate(request) { if case .token(let id, _) = event, id >= 0 { plain.append(id) } }
            #expect(scheduled[index] == plain, "reply \(index)")
        }
    }

    @Test func droppingTheStreamCancels() async throws {
        let model = try LanguageModel(path: modelPath())
        let platform = LivePlatform()
        let scheduler = TokenScheduler(model: model, policy: RacePolicy(), thermal: platform, power: platform, threadCount: 1)
        var tokens = 0
        for try await event in scheduler.submit(ScheduledRequest(prompt: .text("Once upon a time"), maxTokens: 500, sampling: .greedy)) {
            if case .token = event { tokens += 1 }
            if tokens == 3 { break }
        }
        // A second request still runs: the first released its session.
        var finished = false
        for try await event in scheduler.submit(ScheduledRequest(prompt: .text("Hello"), maxTokens: 2, sampling: .greedy)) {
            if case .finished = event { finished = true }
        }
        #expect(finished)
    }

    @Test func criticalMemoryPressureStopsBackgroundWorkAndKeepsInteractive() async throws {
        let model = try LanguageModel(path: modelPath())
        let platform = LivePlatform()
        let scheduler = TokenScheduler(model: model, policy: RacePolicy(), thermal: platform, power: platform, threadCount: 1)
        // Long enough (seconds of work) that it is still running when the chat arrives, however busy the machine.
        let background = scheduler.submit(ScheduledRequest(prompt: .text("Once upon a time"), maxTokens: 1900, sampling: .greedy,
                                                           requestClass: .background, ignoreEndOfGeneration: true))
        var iterator = background.makeAsyncIterator()
        var backgroundTokens = 0
        while backgroundTokens < 3, let event = try await iterator.next() {
            if case .token = event { backgroundTokens += 1 }
        }
        let chat = scheduler.submit(ScheduledRequest(prompt: .text("Hello"), maxTokens: 40, sampling: .greedy))
        var chatReason: StopReason?
        var chatTokens = 0
        for try await event in chat {
            if case .token = event {
                chatTokens += 1
                if chatTokens == 5 { scheduler.handleMemoryPressure(.critical) }
            }
            if case .finished(let reason, _) = event { chatReason = reason }
        }
        #expect(chatReason == .maxTokens || chatReason == .endOfGeneration)
        var backgroundReason: StopReason?
        while let event = try await iterator.next() {
            if case .finished(let reason, _) = event { backgroundReason = reason }
        }
        #expect(backgroundReason == .memoryPressure)
        #expect(scheduler.releasedBytes > 0)
    }
}
