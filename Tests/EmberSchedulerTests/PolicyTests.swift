import EmberCore
import EmberScheduler
import Testing

/// Thermal and power readings set by the test, as an app port would read them from the platform.
struct ScriptedPlatform: ThermalSource, PowerSource {
    var thermalStatus: ThermalStatus = .none
    var headroomNow = 0.3
    var headroomForecast = 0.3
    var batteryPercent = 80.0
    var isCharging = false
    var isPowerSaveMode = false

    func thermalHeadroom(forecastSeconds: Double) -> Double { forecastSeconds > 0 ? headroomForecast : headroomNow }
}

func context(_ time: Double, _ pending: [RequestSnapshot], _ platform: ScriptedPlatform = ScriptedPlatform(),
             threads: Int = 4, cores: Int = 8) -> SchedulingContext {
    SchedulingContext(time: time, pending: pending, thermal: platform, power: platform, maximumThreads: threads,
                      availableCores: cores, prefillChunkTokens: 128)
}

let chat = RequestSnapshot(id: 1, requestClass: .interactive, priority: 10, arrival: 0, promptTokens: 40, maxTokens: 100)
let chatDecoding = RequestSnapshot(id: 1, requestClass: .interactive, priority: 10, arrival: 0, promptTokens: 40,
                                   prefilledTokens: 40, generatedTokens: 1, maxTokens: 100)
let note = RequestSnapshot(id: 2, requestClass: .background, arrival: 0, deadline: 3600, promptTokens: 600, maxTokens: 80)
let noteDecoding = RequestSnapshot(id: 2, requestClass: .background, arrival: 0, deadline: 3600, promptTokens: 600,
                                   prefilledTokens: 600, generatedTokens: 1, maxTokens: 80)

/// An adaptive policy past its first prompt and its thread calibration (2 threads within 8 % of 4).
func calibratedAdaptive() -> AdaptivePolicy {
    var policy = AdaptivePolicy()
    policy.record(StepOutcome(id: 0, kind: .prefill, threads: 4, tokens: 128, seconds: 0.5))
    var time = 0.0
    for _ in 0..<12 where policy.decodeThreads == nil {
        guard case .run(_, let threads, _, _) = policy.decide(context(time, [chatDecoding])) else { break }
        let seconds = [4: 0.0040, 2: 0.0042, 1: 0.0055][threads]!
        policy.record(StepOutcome(id: 1, kind: .decode, threads: threads, tokens: 1, seconds: seconds))
        time += seconds
    }
    _ = policy.decide(context(time, []))  // the choice is made on the next decision
    if policy.decodeThreads == nil { _ = policy.decide(context(time, [chatDecoding])) }
    return AdaptivePolicy(copying: policy)
}

extension AdaptivePolicy {
    /// The same policy with its pacing state for request 1 cleared (a fresh reply).
    init(copying policy: AdaptivePolicy) { self = policy }
}

@Suite struct RacePolicyTests {
    @Test func runsTheMostUrgentOnEveryThreadWithoutHints() {
        let policy = RacePolicy()
        #expect(policy.decide(context(0, [])) == .idle(until: .infinity, reason: .noWork))
        #expect(policy.decide(context(0, [note, chat])) == .run(id: 1, threads: 4, hint: .none))
        let hot = ScriptedPlatform(thermalStatus: .severe, headroomNow: 1.0, headroomForecast: 1.1, batteryPercent: 5)
        #expect(policy.decide(context(0, [note], hot)) == .run(id: 2, threads: 4, hint: .none))
    }

    @Test func urgencyOrdersClassPriorityDeadlineArrival() {
        let early = RequestSnapshot(id: 3, requestClass: .background, arrival: 5, deadline: 100, promptTokens: 1, maxTokens: 1)
        let late = RequestSnapshot(id: 4, requestClass: .background, arrival: 1, deadline: 200, promptTokens: 1, maxTokens: 1)
        let important = RequestSnapshot(id: 5, requestClass: .background, priority: 5, arrival: 9, promptTokens: 1, maxTokens: 1)
        #expect(mostUrgent([late, early])?.id == 3)
        #expect(mostUrgent([late, early, important])?.id == 5)
        #expect(mostUrgent([late, early, important, chat])?.id == 1)
    }
}

@Suite struct AdaptivePolicyTests {
    @Test func firstPromptIsBoostedThenSpreadWithATargetDuration() {
        var policy = AdaptivePolicy()
        #expect(policy.decide(context(0, [chat])) == .run(id: 1, threads: 4, hint: .boost))
        policy.record(StepOutcome(id: 1, kind: .prefill, threads: 4, tokens: 100, seconds: 0.5))  // 200 tokens/s
        guard case .run(let id, let threads, .target(let seconds), let chunk) = policy.decide(context(1, [chat])) else {
            Issue.record("expected a prompt step with a target duration")
            return
        }
        #expect(id == 1 && threads == 8 && chunk == 40)
        #expect(abs(seconds - 40 / (200 * policy.configuration.interactivePrefillSpeed)) < 1e-9)
    }

    @Test func calibrationKeepsTheFewestThreadsWithinTolerance() {
        let policy = calibratedAdaptive()
        #expect(policy.decodeThreads == 2)
    }

    @Test func interactiveTokensArePacedToTheTargetRate() {
        var policy = calibratedAdaptive()
        let start = 10.0
        #expect(policy.decide(context(start, [chatDecoding])) == .run(id: 1, threads: 2, hint: .none))
        let interval = 1 / policy.configuration.interactiveTokensPerSecond
        #expect(policy.decide(context(start + 0.004, [chatDecoding])) == .idle(until: start + interval, reason: .pacing))
        #expect(policy.decide(context(start + interval, [chatDecoding])) == .run(id: 1, threads: 2, hint: .none))
    }

    @Test func heatSlowsInteractiveWorkToReadingSpeedOnOneThreadThenPauses() {
        var policy = calibratedAdaptive()
        let hot = ScriptedPlatform(thermalStatus: .moderate, headroomNow: 0.85, headroomForecast: 0.92)
        #expect(policy.decide(context(20, [chatDecoding], hot)) == .run(id: 1, threads: 1, hint: .none))
        let reading = 1 / policy.configuration.readingTokensPerSecond
        #expect(policy.decide(context(20.01, [chatDecoding], hot)) == .idle(until: 20 + reading, reason: .pacing))
        let edge = ScriptedPlatform(thermalStatus: .moderate, headroomNow: 0.97, headroomForecast: 1.0)
        #expect(policy.decide(context(30, [chatDecoding], edge)) == .idle(until: 30.5, reason: .thermalPause))
    }

    @Test func backgroundWorkWaitsForCoolAndForTheChargerUnlessItsDeadlineIsNear() {
        var policy = calibratedAdaptive()
        let warm = ScriptedPlatform(thermalStatus: .light, headroomNow: 0.7, headroomForecast: 0.8)
        #expect(policy.decide(context(100, [noteDecoding], warm)) == .idle(until: 110, reason: .thermalDeferral))
        let low = ScriptedPlatform(batteryPercent: 20)
        guard case .idle(_, .batteryDeferral) = policy.decide(context(100, [noteDecoding], low)) else {
            Issue.record("expected a battery deferral")
            return
        }
        var charging = low
        charging.isCharging = true
        #expect(policy.decide(context(100, [noteDecoding], charging)) == .run(id: 2, threads: 1, hint: .none))
        // 79 tokens at the background pace, × the safety factor, no longer fit before the deadline.
        let nearDeadline = 3600 - 79 / policy.configuration.backgroundTokensPerSecond * policy.configuration.deadlineSafetyFactor + 1
        #expect(policy.decide(context(nearDeadline, [noteDecoding], warm)) == .run(id: 2, threads: 4, hint: .none))
    }

    @Test func interactiveWorkPreemptsBackground() {
        var policy = calibratedAdaptive()
        guard case .run(let id, _, _, _) = policy.decide(context(50, [noteDecoding, chat])) else {
            Issue.record("expected a run")
            return
        }
        #expect(id == 1)
    }

    @Test func backgroundPromptsUseShortStepsWhileTheScreenIsOn() {
        var policy = calibratedAdaptive()  // reference prompt speed 256 tokens/s
        var screenOn = context(100, [note])
        guard case .run(_, _, .target, let shortChunk) = policy.decide(screenOn) else { Issue.record("expected a prompt step"); return }
        screenOn.isScreenOn = false
        guard case .run(_, _, .target, let longChunk) = policy.decide(screenOn) else { Issue.record("expected a prompt step"); return }
        #expect((shortChunk ?? 0) < (longChunk ?? 0))
        #expect(longChunk == 128)
    }

    @Test func backgroundRepliesAreDecodedTogether() {
        var policy = calibratedAdaptive()
        func noteSnapshot(_ id: Int, prefilled: Bool) -> RequestSnapshot {
            RequestSnapshot(id: id, requestClass: .background, arrival: Double(id), deadline: 36_000, promptTokens: 600,
                            prefilledTokens: prefilled ? 600 : 0, generatedTokens: prefilled ? 1 : 0, maxTokens: 80)
        }
        var charging = ScriptedPlatform()
        charging.isCharging = true
        func batchContext(_ time: Double, _ pending: [RequestSnapshot], limit: Int) -> SchedulingContext {
            var result = context(time, pending, charging)
            result.isScreenOn = false
            result.maximumDecodeBatch = limit
            return result
        }
        // The four most urgent form the batch: their prompts come first, the fifth waits.
        let some = [noteSnapshot(2, prefilled: true), noteSnapshot(3, prefilled: false), noteSnapshot(4, prefilled: false),
                    noteSnapshot(5, prefilled: true), noteSnapshot(6, prefilled: false)]
        guard case .run(3, _, .target, _) = policy.decide(batchContext(100, some, limit: 4)) else {
            Issue.record("expected the prompt of request 3")
            return
        }
        let ready = [noteSnapshot(2, prefilled: true), noteSnapshot(3, prefilled: true), noteSnapshot(4, prefilled: true),
                     noteSnapshot(5, prefilled: true), noteSnapshot(6, prefilled: false)]
        #expect(policy.decide(batchContext(100, ready, limit: 4)) == .decodeBatch(ids: [2, 3, 4, 5], threads: 1, hint: .none))
        // The batch is paced like one reply.
        let step = 1 / policy.configuration.backgroundTokensPerSecond
        #expect(policy.decide(batchContext(100.01, ready, limit: 4)) == .idle(until: 100 + step, reason: .pacing))
        // An engine that holds one sequence at a time decodes the most urgent alone.
        #expect(policy.decide(batchContext(200, ready, limit: 1)) == .run(id: 2, threads: 1, hint: .none))
        // A batch step is not a thread-count measurement.
        policy.record(StepOutcome(id: 2, kind: .decode, threads: 1, tokens: 4, seconds: 1))
        #expect(policy.decodeThreads == 2)
    }
}
