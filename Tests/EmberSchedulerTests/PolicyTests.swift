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
    // Request 1 gone: its pacing and reading state is cleared, so a test's request 1 is a fresh reply.
    _ = policy.decide(context(time, []))
    return AdaptivePolicy(copying: policy)
}

/// A chat reply 300 tokens in: far ahead of a reader who started within the last minute.
let replyAhead = RequestSnapshot(id: 1, requestClass: .interactive, priority: 10, arrival: 0, promptTokens: 40,
                                 prefilledTokens: 40, generatedTokens: 300, maxTokens: 400)

/// Lets `policy` see request 1's first token at `time` (its reader starts there).
func seeFirstToken(_ policy: inout AdaptivePolicy, at time: Double) {
    _ = policy.decide(context(time, [chatDecoding]))
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

    /// A reference prompt speed measured while the OS was capping the clocks (a hot phone) is a
    /// throttled phone's speed: once the phone is cooler, the next prompt is boosted again and
    /// measures it anew, else a cool phone's prompts keep running at the hot speed.
    @Test func aReferenceMeasuredHotIsMeasuredAgainWhenThePhoneIsCooler() {
        var policy = AdaptivePolicy()
        var hot = ScriptedPlatform()
        hot.thermalStatus = .moderate
        #expect(policy.decide(context(0, [chat], hot)) == .run(id: 1, threads: 4, hint: .boost))
        policy.record(StepOutcome(id: 1, kind: .prefill, threads: 4, tokens: 100, seconds: 2))  // 50 tokens/s, throttled
        // Still hot: the reference holds.
        guard case .run(_, _, .target(let hotSeconds), let hotChunk) = policy.decide(context(2, [chat], hot)) else {
            Issue.record("expected a prompt step with a target duration")
            return
        }
        #expect(abs(hotSeconds - Double(hotChunk ?? 0) / 50) < 1e-9)
        // Cooler: boosted again, and the new speed is the reference.
        #expect(policy.decide(context(60, [chat])) == .run(id: 1, threads: 4, hint: .boost))
        policy.record(StepOutcome(id: 1, kind: .prefill, threads: 4, tokens: 100, seconds: 0.5))  // 200 tokens/s
        guard case .run(_, _, .target(let coolSeconds), let coolChunk) = policy.decide(context(61, [chat])) else {
            Issue.record("expected a prompt step with a target duration")
            return
        }
        #expect(abs(coolSeconds - Double(coolChunk ?? 0) / 200) < 1e-9)
        // A later prompt step's speed (targeted) does not replace the reference.
        policy.record(StepOutcome(id: 1, kind: .prefill, threads: 8, tokens: 40, seconds: 1))
        guard case .run(_, _, .target(let laterSeconds), let laterChunk) = policy.decide(context(62, [chat])) else {
            Issue.record("expected a prompt step with a target duration")
            return
        }
        #expect(abs(laterSeconds - Double(laterChunk ?? 0) / 200) < 1e-9)
    }

    @Test func calibrationKeepsTheFewestThreadsWithinTolerance() {
        let policy = calibratedAdaptive()
        #expect(policy.decodeThreads == 2)
    }

    @Test func interactiveTokensArePacedToTheTargetRate() {
        var policy = calibratedAdaptive()
        let start = 10.0
        // Each token at the clocks of least energy: twice the fastest token seen on 2 threads (4.2 ms).
        let efficient = PerformanceHint.target(seconds: policy.configuration.efficientTokenSlowdown * 0.0042)
        #expect(policy.decide(context(start, [chatDecoding])) == .run(id: 1, threads: 2, hint: efficient))
        let interval = 1 / policy.configuration.interactiveTokensPerSecond
        #expect(policy.decide(context(start + 0.004, [chatDecoding])) == .idle(until: start + interval, reason: .pacing))
        #expect(policy.decide(context(start + interval, [chatDecoding])) == .run(id: 1, threads: 2, hint: efficient))
    }

    @Test func pacedTokensTargetTheClocksOfLeastEnergyNeverLongerThanTheirGap() {
        var policy = calibratedAdaptive()
        // A faster token on 2 threads lowers the target with it (the fastest seen sets it).
        policy.record(StepOutcome(id: 1, kind: .decode, threads: 2, tokens: 1, seconds: 0.003))
        #expect(policy.decide(context(10, [chatDecoding])) == .run(id: 1, threads: 2, hint: .target(seconds: 0.006)))
        // A pace faster than the efficient clocks allow (200 tokens/s, gaps of 5 ms against 8.4 ms
        // tokens): the target is the pacing gap, not twice the fastest token.
        var quick = calibratedAdaptive()
        quick.configuration.interactiveTokensPerSecond = 200
        #expect(quick.decide(context(10, [chatDecoding])) == .run(id: 1, threads: 2, hint: .target(seconds: 1.0 / 200)))
        var fresh = AdaptivePolicy()
        // Battery saver paces at reading speed; the token still runs at the efficient clocks.
        let saver = ScriptedPlatform(batteryPercent: 12, isPowerSaveMode: true)
        let ahead = RequestSnapshot(id: 1, requestClass: .interactive, priority: 10, arrival: 0, promptTokens: 40,
                                    prefilledTokens: 40, generatedTokens: 90, maxTokens: 100)  // ahead of its reader
        #expect(policy.decide(context(20, [ahead], saver)) == .run(id: 1, threads: 2, hint: .target(seconds: 0.006)))
        // Before any token was measured there is nothing to scale: no hint (the calibration runs).
        guard case .run(1, _, .none, _) = fresh.decide(context(0, [chatDecoding])) else {
            Issue.record("expected an unhinted calibration token")
            return
        }
    }

    @Test func heatSlowsInteractiveWorkToReadingSpeedOnOneThreadThenPausesWhileAheadOfTheReader() {
        var policy = calibratedAdaptive()
        let hot = ScriptedPlatform(thermalStatus: .moderate, headroomNow: 0.85, headroomForecast: 0.92)
        let reading = 1 / policy.configuration.readingTokensPerSecond
        // One thread at reading pace, each token at the clocks of least energy (least heat): twice
        // the fastest token seen on one thread (5.5 ms).
        let leastHeat = PerformanceHint.target(seconds: policy.configuration.efficientTokenSlowdown * 0.0055)
        #expect(policy.decide(context(20, [chatDecoding], hot)) == .run(id: 1, threads: 1, hint: leastHeat))
        #expect(policy.decide(context(20.01, [chatDecoding], hot)) == .idle(until: 20 + reading, reason: .pacing))
        // The app's own heat at the edge of SEVERE (the environment, seen before any work, was
        // cool): the reply pauses while it is ahead of its reader…
        let edge = ScriptedPlatform(thermalStatus: .moderate, headroomNow: 0.97, headroomForecast: 1.0)
        let ahead = RequestSnapshot(id: 7, requestClass: .interactive, priority: 10, arrival: 20.5, promptTokens: 40,
                                    prefilledTokens: 40, generatedTokens: 40, maxTokens: 100)
        #expect(policy.decide(context(21, [ahead], edge)) == .idle(until: 21.5, reason: .thermalPause))
        // …and runs, at the lowest power, once the reader has caught up.
        #expect(policy.decide(context(40, [ahead], edge)) == .run(id: 7, threads: 1, hint: leastHeat))
    }

    @Test func environmentCausedSevereStillServesInteractiveAtTheLowestPower() {
        var policy = calibratedAdaptive()
        // A car mount on a hot day: the idle phone alone is well past SEVERE.
        let hotCar = ScriptedPlatform(thermalStatus: .severe, headroomNow: 1.3, headroomForecast: 1.32)
        var decoding = context(100, [chatDecoding], hotCar)
        decoding.environmentHeadroom = 1.28
        let leastHeat = PerformanceHint.target(seconds: policy.configuration.efficientTokenSlowdown * 0.0055)
        #expect(policy.decide(decoding) == .run(id: 1, threads: 1, hint: leastHeat))
        // Served at reading pace: the next token waits a tenth of a second, never longer.
        let reading = 1 / policy.configuration.readingTokensPerSecond
        var next = decoding
        next.time = 100.01
        #expect(policy.decide(next) == .idle(until: 100 + reading, reason: .pacing))
        next.time = 100 + reading
        #expect(policy.decide(next) == .run(id: 1, threads: 1, hint: leastHeat))
        // A new question's prompt is processed too, with a target duration, and no slower than
        // when cool: the person waits for it, and the heat is not the app's.
        var prompt = context(101, [chat], hotCar)
        prompt.environmentHeadroom = 1.28
        guard case .run(1, _, .target(let hotSeconds), let hotChunk) = policy.decide(prompt) else {
            Issue.record("expected the prompt to run with a target duration")
            return
        }
        guard case .run(1, _, .target(let coolSeconds), let coolChunk) = policy.decide(context(102, [chat])) else {
            Issue.record("expected the prompt to run with a target duration")
            return
        }
        #expect(hotSeconds / Double(hotChunk ?? 1) <= coolSeconds / Double(coolChunk ?? 1) + 1e-12)
    }

    /// The environment alone just below the SEVERE line (a warm room, a charging phone): any heat
    /// holds the skin above the line for as long as the work runs, so a reply runs at the warm
    /// pace (each token at the clocks of least energy) and ends sooner, not at reading speed on
    /// one thread, which would keep the skin above the line several times as long.
    @Test func aReplyWithTheEnvironmentJustBelowTheSevereLineEndsSooner() {
        var policy = calibratedAdaptive()
        let atLine = ScriptedPlatform(thermalStatus: .severe, headroomNow: 1.0, headroomForecast: 1.01)
        var decoding = context(100, [chatDecoding], atLine)
        decoding.environmentHeadroom = 0.99
        // The warm pace (the forecast is past the caution line), not reading speed.
        let configuration = policy.configuration
        let warm = 2 / (configuration.interactiveTokensPerSecond + configuration.readingTokensPerSecond)
        // Two threads (the calibrated count), at twice the fastest token seen there (4.2 ms).
        let efficient = PerformanceHint.target(seconds: configuration.efficientTokenSlowdown * 0.0042)
        #expect(policy.decide(decoding) == .run(id: 1, threads: 2, hint: efficient))
        var next = decoding
        next.time = 100.001
        #expect(policy.decide(next) == .idle(until: 100 + warm, reason: .pacing))
        // At or above the line (the skin is past it with or without the work): the lowest power.
        var above = context(150, [chatDecoding], atLine)
        above.environmentHeadroom = 1.02
        guard case .run(1, 1, _, _) = policy.decide(above) else {
            Issue.record("expected one thread at reading pace")
            return
        }
        // Clearly below the line the environment leaves room: reading pace on one thread.
        var below = context(200, [chatDecoding], atLine)
        below.environmentHeadroom = 0.9
        guard case .run(1, 1, _, _) = policy.decide(below) else {
            Issue.record("expected one thread at reading pace")
            return
        }
    }

    @Test func aReplyItsReaderCaughtUpWithRunsWithoutAGap() {
        func reply(_ generated: Int) -> RequestSnapshot {
            RequestSnapshot(id: 1, requestClass: .interactive, priority: 10, arrival: 0, promptTokens: 40,
                            prefilledTokens: 40, generatedTokens: generated, maxTokens: 400)
        }
        // Cool: the first token targets the efficient clocks and is paced…
        var policy = calibratedAdaptive()
        let efficient = PerformanceHint.target(seconds: policy.configuration.efficientTokenSlowdown * 0.0042)
        #expect(policy.decide(context(20, [reply(1)])) == .run(id: 1, threads: 2, hint: efficient))
        // …but 8 s later the reply has 20 tokens (long prompts ran in its gaps) and its reader, at
        // 5.7 tokens/s, has read them all: the person waits, so the tokens run back to back at full
        // speed, on the default threads (the calibrated fewest threads are for energy, not speed).
        #expect(policy.decide(context(28, [reply(20)])) == .run(id: 1, threads: 4, hint: .none))
        #expect(policy.decide(context(28.001, [reply(20)])) == .run(id: 1, threads: 4, hint: .none))
        // Ahead of its reader again, it is paced as before.
        guard case .idle(_, .pacing) = policy.decide(context(28.002, [reply(80)])) else {
            Issue.record("expected the reply ahead of its reader to be paced")
            return
        }
        // A hot car: the waiting reader's tokens run back to back too, but at the least-heat setting.
        var hotPolicy = calibratedAdaptive()
        let hotCar = ScriptedPlatform(thermalStatus: .severe, headroomNow: 1.1, headroomForecast: 1.12)
        let leastHeat = PerformanceHint.target(seconds: hotPolicy.configuration.efficientTokenSlowdown * 0.0055)
        func inCar(_ time: Double, _ generated: Int) -> SchedulingContext {
            var result = context(time, [reply(generated)], hotCar)
            result.environmentHeadroom = 1.08
            return result
        }
        #expect(hotPolicy.decide(inCar(20, 1)) == .run(id: 1, threads: 1, hint: leastHeat))
        #expect(hotPolicy.decide(inCar(20.01, 1)) == .idle(until: 20 + 1 / hotPolicy.configuration.readingTokensPerSecond, reason: .pacing))
        #expect(hotPolicy.decide(inCar(28, 20)) == .run(id: 1, threads: 1, hint: leastHeat))
        #expect(hotPolicy.decide(inCar(28.001, 20)) == .run(id: 1, threads: 1, hint: leastHeat))
    }

    @Test func aReplyNotAheadOfItsReaderRunsAtFullSpeedWhileAnotherPersonWaitsForAFirstToken() {
        // A reply whose first token came at 20 s has 11 tokens at 21.79 s: its reader (5.7 tokens/s)
        // has read 10.2 — not waiting yet, and not ahead by more than a token, so a waiting prompt
        // runs only once the reply is ahead again. Alone, its token is paced at the clocks of least
        // energy on the calibrated threads; with another question's prompt waiting, the reply's time
        // at low clocks is taken from that person's first token: full speed, default threads.
        func reply(_ generated: Int) -> RequestSnapshot {
            RequestSnapshot(id: 1, requestClass: .interactive, priority: 10, arrival: 0, promptTokens: 40,
                            prefilledTokens: 40, generatedTokens: generated, maxTokens: 400)
        }
        let question = RequestSnapshot(id: 3, requestClass: .interactive, priority: 10, arrival: 21, promptTokens: 300, maxTokens: 200)
        let time = 20 + 10.2 / Reader.tokensPerSecond
        var alone = calibratedAdaptive()
        seeFirstToken(&alone, at: 20)
        let efficient = PerformanceHint.target(seconds: alone.configuration.efficientTokenSlowdown * 0.0042)
        #expect(alone.decide(context(time, [reply(11)])) == .run(id: 1, threads: 2, hint: efficient))
        var beside = calibratedAdaptive()
        seeFirstToken(&beside, at: 20)
        #expect(beside.decide(context(time, [reply(11), question])) == .run(id: 1, threads: 4, hint: .none))
    }

    @Test func overloadRunsEveryStepAtFullSpeedAndDecodesLateRequestsTogether() {
        var policy = calibratedAdaptive()
        // Two notes whose remaining tokens (× the safety factor) no longer fit before their deadlines.
        func late(_ id: Int, deadline: Double) -> RequestSnapshot {
            RequestSnapshot(id: id, requestClass: .background, arrival: 0, deadline: deadline, promptTokens: 600,
                            prefilledTokens: 600, generatedTokens: 1, maxTokens: 80)
        }
        func overloaded(_ time: Double) -> SchedulingContext {
            var result = context(time, [chatDecoding, late(2, deadline: 20), late(3, deadline: 21)])
            result.maximumDecodeBatch = 4
            return result
        }
        // The chat's token runs without the efficient-clock target: CPU time spent slowly would be
        // taken from the deadlines.
        #expect(policy.decide(overloaded(15)) == .run(id: 1, threads: 2, hint: .none))
        // In its pacing gap the late notes run, decoded together, unpaced on the decode threads
        // (2: within 8 % of 4's speed; decoding is memory-bound).
        #expect(policy.decide(overloaded(15.001)) == .decodeBatch(ids: [2, 3], threads: 2, hint: .none))
        // Without the late notes the reply's tokens (ahead of its reader) target the efficient clocks again.
        let efficient = PerformanceHint.target(seconds: policy.configuration.efficientTokenSlowdown * 0.0042)
        let ahead = RequestSnapshot(id: 1, requestClass: .interactive, priority: 10, arrival: 0, promptTokens: 40,
                                    prefilledTokens: 40, generatedTokens: 40, maxTokens: 100)
        #expect(policy.decide(context(16, [ahead])) == .run(id: 1, threads: 2, hint: efficient))
    }

    @Test func aBatchOfNotesIsLateWhenTheNotesAtTheBackWouldBe() {
        // Eight notes due together (calibrated: 256 prompt tokens/s, 4 KV caches): each note's own
        // work (600 prompt tokens, 80 tokens at 15 steps/s) × 1.5 is 11.5 s, but the eighth
        // finishes after the prompts of all eight and its share of their decode steps: 44 s × 1.5.
        var policy = calibratedAdaptive()
        func batch(dueIn seconds: Double, at time: Double) -> SchedulingContext {
            let notes = (2...9).map { id in
                RequestSnapshot(id: id, requestClass: .background, arrival: 0, deadline: time + seconds, promptTokens: 600, maxTokens: 80)
            }
            var result = context(time, notes)
            result.maximumDecodeBatch = 4
            return result
        }
        let ownWork = (600 / 256.0 + 80 / policy.configuration.backgroundTokensPerSecond) * policy.configuration.deadlineSafetyFactor
        let queueWork = (8 * 600 / 256.0 + 8 * 80 / 4 / policy.configuration.backgroundTokensPerSecond) * policy.configuration.deadlineSafetyFactor
        // Due in 30 s: time for any one note alone, not for the eighth behind the other seven. The
        // first note is out of slack (the work ahead of a late note must run now): its prompt runs
        // as race's would, a whole chunk on the default threads without a hint.
        let tight = 30.0
        #expect(ownWork < tight && tight < queueWork)
        let late = batch(dueIn: tight, at: 10)
        #expect(policy.decide(late) == .run(id: 2, threads: 4, hint: .none, chunk: 128))
        // Due in a minute there is time for all eight: the prompt runs at the background pace
        // (short steps with a target duration, the screen being on).
        #expect(queueWork < 60)
        let loose = batch(dueIn: 60, at: 20)
        guard case .run(2, _, .target, let chunk) = policy.decide(loose) else {
            Issue.record("expected a paced background prompt step")
            return
        }
        #expect((chunk ?? 128) < 128)
    }

    @Test func interactivePromptsRunAtTheReferenceSpeed() {
        // What the person waits for is not slowed: a prompt chunk's target is its tokens at the
        // speed of the first, boosted chunk (spread over every core, so at lower clocks).
        var policy = AdaptivePolicy()
        _ = policy.decide(context(0, [chat]))
        policy.record(StepOutcome(id: 1, kind: .prefill, threads: 4, tokens: 100, seconds: 0.5))  // 200 tokens/s
        guard case .run(1, 8, .target(let seconds), let chunk) = policy.decide(context(1, [chat])) else {
            Issue.record("expected a prompt step with a target duration")
            return
        }
        #expect(abs(seconds - Double(chunk ?? 0) / 200) < 1e-9)
        // Background prompts with the screen on keep a slower target: nobody waits for them.
        guard case .run(2, _, .target(let background), let backgroundChunk) = policy.decide(context(2, [note])) else {
            Issue.record("expected a background prompt step with a target duration")
            return
        }
        #expect(background / Double(backgroundChunk ?? 1) > 1 / 200.0 + 1e-9)
    }

    @Test func heatBeforeAnyMeasuredTokenTargetsTheReadingGap() {
        // Calibrated on 4 and 2 threads only (a platform that never ran one): no fastest token on
        // one thread to scale, so the token's target is its gap at reading pace.
        var policy = AdaptivePolicy()
        policy.record(StepOutcome(id: 0, kind: .prefill, threads: 4, tokens: 128, seconds: 0.5))
        var time = 0.0
        for _ in 0..<12 where policy.decodeThreads == nil {
            guard case .run(_, let threads, _, _) = policy.decide(context(time, [chatDecoding])) else { break }
            if threads != 1 {
                policy.record(StepOutcome(id: 1, kind: .decode, threads: threads, tokens: 1, seconds: [4: 0.0040, 2: 0.0042][threads]!))
            }
            time += 0.005
        }
        _ = policy.decide(context(time, []))
        let hot = ScriptedPlatform(thermalStatus: .severe, headroomNow: 1.0, headroomForecast: 1.05)
        let reading = 1 / policy.configuration.readingTokensPerSecond
        #expect(policy.decide(context(50, [chatDecoding], hot)) == .run(id: 1, threads: 1, hint: .target(seconds: reading)))
    }

    @Test func environmentHeatIsEstimatedFromIdleHeadroomOnARealPhone() {
        // No environment figure from the platform: the headroom seen after 30 s idle stands for it.
        var policy = calibratedAdaptive()
        let hotCar = ScriptedPlatform(thermalStatus: .severe, headroomNow: 1.1, headroomForecast: 1.1)
        #expect(policy.decide(context(200, [], hotCar)) == .idle(until: .infinity, reason: .noWork))
        let ahead = RequestSnapshot(id: 7, requestClass: .interactive, priority: 10, arrival: 200.5, promptTokens: 40,
                                    prefilledTokens: 40, generatedTokens: 40, maxTokens: 100)
        // Were the heat the app's, a reply ahead of its reader would pause; it is the car's.
        guard case .run(7, 1, _, _) = policy.decide(context(201, [ahead], hotCar)) else {
            Issue.record("expected the reply to run at the lowest power")
            return
        }
    }

    @Test func criticalPausesInteractiveBrieflyThenResumes() {
        var policy = calibratedAdaptive()
        seeFirstToken(&policy, at: 99)
        let critical = ScriptedPlatform(thermalStatus: .critical, headroomNow: 1.3, headroomForecast: 1.3)
        // 300 tokens a second after the first: far ahead of its reader.
        var paused = context(100, [replyAhead], critical)
        paused.environmentHeadroom = 1.25
        let pause = policy.configuration.criticalPauseSeconds
        #expect(policy.decide(paused) == .idle(until: 100 + pause, reason: .thermalPause))
        // Re-checked after the pause: back to SEVERE, the reply resumes at the lowest power.
        let severe = ScriptedPlatform(thermalStatus: .severe, headroomNow: 1.1, headroomForecast: 1.1)
        var resumed = context(100 + pause, [replyAhead], severe)
        resumed.environmentHeadroom = 1.05
        guard case .run(1, 1, .target, _) = policy.decide(resumed) else {
            Issue.record("expected the reply to resume")
            return
        }
        // Held `maximumPauseSeconds` in all, a reply runs at the lowest power even at CRITICAL.
        var stuck = calibratedAdaptive()
        seeFirstToken(&stuck, at: 99)
        var time = 100.0
        while case .idle = stuck.decide(paused), time < 200 {
            time += pause
            paused.time = time
        }
        #expect(time - 100 <= stuck.configuration.maximumPauseSeconds + pause)
    }

    /// Issue 20's fuzzing: conversations in a hot car lost questions to prompts paused at
    /// CRITICAL. The person waits for a prompt and for a reply they have caught up with; only a
    /// reply ahead of its reader pauses at CRITICAL, anything from EMERGENCY on.
    @Test func criticalPausesOnlyWhatThePersonDoesNotWaitFor() {
        var policy = calibratedAdaptive()
        let critical = ScriptedPlatform(thermalStatus: .critical, headroomNow: 1.3, headroomForecast: 1.3)
        var question = context(100, [chat], critical)
        question.environmentHeadroom = 1.2  // the app's heat is part of it
        guard case .run(1, _, _, _) = policy.decide(question) else {
            Issue.record("expected the prompt to run at CRITICAL")
            return
        }
        // A reader who has read every token waits for the next one: it runs too.
        seeFirstToken(&policy, at: 50)
        var caughtUp = context(100, [chatDecoding], critical)
        caughtUp.environmentHeadroom = 1.2
        guard case .run(1, _, _, _) = policy.decide(caughtUp) else {
            Issue.record("expected the caught-up reader's token to run at CRITICAL")
            return
        }
        // Imminent shutdown: the prompt pauses too.
        var emergency = context(100, [chat], ScriptedPlatform(thermalStatus: .emergency, headroomNow: 1.6, headroomForecast: 1.6))
        emergency.environmentHeadroom = 1.2
        var fresh = calibratedAdaptive()
        #expect(fresh.decide(emergency) == .idle(until: 100 + fresh.configuration.criticalPauseSeconds, reason: .thermalPause))
    }

    @Test func urgentBackgroundWorkRunsBehindAHeldInteractiveRequest() {
        var policy = calibratedAdaptive()
        let critical = ScriptedPlatform(thermalStatus: .critical, headroomNow: 1.3, headroomForecast: 1.3)
        // A note due at 200 s, and a reply far ahead of its reader (first token at 150 s): the
        // reply is held at CRITICAL.
        let dueNote = RequestSnapshot(id: 2, requestClass: .background, arrival: 0, deadline: 200, promptTokens: 600,
                                      prefilledTokens: 600, generatedTokens: 1, maxTokens: 80)
        seeFirstToken(&policy, at: 150)
        func held(_ time: Double) -> SchedulingContext {
            var result = context(time, [replyAhead, dueNote], critical)
            result.environmentHeadroom = 1.0  // the app's heat took the phone from SEVERE to CRITICAL
            return result
        }
        // Not yet urgent: the reply's pause ends no later than the note's latest start.
        guard case .idle(let until, .thermalPause) = policy.decide(held(180)) else {
            Issue.record("expected the reply's pause")
            return
        }
        #expect(until <= 180 + policy.configuration.criticalPauseSeconds)
        // The note's deadline no longer allows waiting: it runs while the reply is held, unpaced
        // on the calibrated decode threads.
        let nearDeadline = 200 - 79 / policy.configuration.backgroundTokensPerSecond * policy.configuration.deadlineSafetyFactor + 1
        #expect(policy.decide(held(nearDeadline)) == .run(id: 2, threads: 2, hint: .none))
        // Aging: a note without a deadline that has waited `maximumWaitSeconds` runs in a pacing gap.
        let undated = RequestSnapshot(id: 3, requestClass: .background, arrival: 0, promptTokens: 600, prefilledTokens: 600,
                                      generatedTokens: 1, maxTokens: 80)
        var aging = calibratedAdaptive()
        let late = aging.configuration.maximumWaitSeconds + 1
        #expect(aging.decide(context(late, [chatDecoding, undated]))
            == .run(id: 1, threads: 2, hint: .target(seconds: aging.configuration.efficientTokenSlowdown * 0.0042)))
        #expect(aging.decide(context(late + 0.001, [chatDecoding, undated])) == .run(id: 3, threads: 1, hint: .none))
    }

    @Test func backgroundWorkWaitsForCoolOnlyWhenTheHeatIsItsOwnAndNotForTheCharger() {
        var policy = calibratedAdaptive()
        let warm = ScriptedPlatform(thermalStatus: .light, headroomNow: 0.7, headroomForecast: 0.8)
        // The warmth is the app's (the phone alone would be at 0.5): waiting lets it cool.
        var ownHeat = context(100, [noteDecoding], warm)
        ownHeat.environmentHeadroom = 0.5
        #expect(policy.decide(ownHeat) == .idle(until: 110, reason: .thermalDeferral))
        // The warmth is the environment's: waiting would not cool the phone, the note runs paced.
        var environmentHeat = ownHeat
        environmentHeat.environmentHeadroom = 0.8
        #expect(policy.decide(environmentHeat) == .run(id: 2, threads: 1, hint: .none))
        // Low battery: the note does not wait for the charger (waiting saves no energy), screen on or off.
        let low = ScriptedPlatform(batteryPercent: 12, isPowerSaveMode: true)
        var screenOff = context(200, [noteDecoding], low)
        screenOff.isScreenOn = false
        #expect(policy.decide(screenOff) == .run(id: 2, threads: 1, hint: .none))
        #expect(policy.decide(context(300, [noteDecoding], low)) == .run(id: 2, threads: 1, hint: .none))
        // 79 tokens at the background pace, × the safety factor, no longer fit before the deadline:
        // unpaced, on the calibrated decode threads.
        let nearDeadline = 3600 - 79 / policy.configuration.backgroundTokensPerSecond * policy.configuration.deadlineSafetyFactor + 1
        var late = context(nearDeadline, [noteDecoding], warm)
        late.environmentHeadroom = 0.5
        #expect(policy.decide(late) == .run(id: 2, threads: 2, hint: .none))
    }

    @Test func aShortQuestionGoesBeforeALongPromptAndARepliesAheadOfItsReader() {
        var policy = calibratedAdaptive()
        let document = RequestSnapshot(id: 5, requestClass: .interactive, priority: 10, arrival: 100, promptTokens: 3000,
                                       prefilledTokens: 512, maxTokens: 100)
        let question = RequestSnapshot(id: 6, requestClass: .interactive, priority: 10, arrival: 101, promptTokens: 40, maxTokens: 100)
        guard case .run(6, _, _, _) = policy.decide(context(101, [document, question])) else {
            Issue.record("expected the short question's prompt first")
            return
        }
        // A reply ahead of its reader lets a waiting prompt go first.
        let ahead = RequestSnapshot(id: 7, requestClass: .interactive, priority: 10, arrival: 99, promptTokens: 40,
                                    prefilledTokens: 40, generatedTokens: 30, maxTokens: 100)
        guard case .run(5, _, _, _) = policy.decide(context(102, [ahead, document])) else {
            Issue.record("expected the waiting prompt before the reply ahead of its reader")
            return
        }
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

    /// Issue 20's fuzzing: on a slow or throttled phone 60 ms of background prompt held a few
    /// tokens, and every step read all the weights again — background prompts cost more than
    /// race's 128-token chunks. With the screen off, 0.35 × the reference speed ran below the
    /// clocks of least energy.
    @Test func backgroundPromptStepsHoldAQuarterChunkAtTheClocksOfLeastEnergy() {
        var policy = AdaptivePolicy()
        // A slow phone: its first prompt chunk ran at 40 tokens/s.
        policy.record(StepOutcome(id: 0, kind: .prefill, threads: 4, tokens: 128, seconds: 3.2))
        guard case .run(2, _, .target(let seconds), let chunk) = policy.decide(context(10, [note])) else {
            Issue.record("expected a background prompt step")
            return
        }
        #expect(chunk == policy.configuration.minimumBackgroundStepTokens)
        #expect(abs(seconds - Double(chunk ?? 0) / (40 * policy.configuration.screenOnBackgroundPrefillSpeed)) < 1e-9)
        // Screen off: whole chunks, at half the reference speed (about half the top clock).
        var dark = context(10, [note])
        dark.isScreenOn = false
        guard case .run(2, _, .target(let darkSeconds), let darkChunk) = policy.decide(dark) else {
            Issue.record("expected a background prompt step")
            return
        }
        #expect(darkChunk == 128)
        #expect(policy.configuration.backgroundPrefillSpeed == 1 / policy.configuration.efficientTokenSlowdown)
        #expect(abs(darkSeconds - 128 / (40 * policy.configuration.backgroundPrefillSpeed)) < 1e-9)
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
