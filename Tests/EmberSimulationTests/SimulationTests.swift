import EmberDevice
import EmberScheduler
@testable import EmberSimulation
import Foundation
import Testing

enum SimulationSupport {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func profile(_ name: String) throws -> DeviceProfile {
        try DeviceProfile.load(path: root.appendingPathComponent("Profiles/\(name).json").path)
    }
    static func scenarioPath(_ name: String) -> String { root.appendingPathComponent("Simulator/Scenarios/\(name).json").path }
    static func scenario(_ name: String) throws -> Scenario { try Scenario.load(path: scenarioPath(name)) }
    static let workload = ModelWorkload.catalog["smollm2-135m-q4_1"]!

    static func run(_ scenario: Scenario, profile: String = "flagship-android") throws -> SimulationResult {
        let runner = SimulationRunner(profile: try Self.profile(profile), scenario: scenario, workload: workload)
        var policy = RacePolicy()
        var engine = CostModelEngine()
        return try runner.run(policy: &policy, engine: &engine)
    }

    static func scenario(json: String) throws -> Scenario {
        let scenario: Scenario = try JSONFile.decode(Data(json.utf8), file: "inline.json")
        try scenario.validate(file: "inline.json")
        return scenario
    }
}

@Suite struct SimulationTests {
    static let shippedScenarios = (try? FileManager.default.contentsOfDirectory(atPath: SimulationSupport.root.appendingPathComponent("Simulator/Scenarios").path))?
        .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted() ?? []

    @Test func shippedScenariosLoad() throws {
        #expect(Self.shippedScenarios.contains("sustained-decode"))
        #expect(Self.shippedScenarios.contains("day-in-the-life"))
        for name in Self.shippedScenarios { _ = try SimulationSupport.scenario(name) }
        #expect(try SimulationSupport.scenario("day-in-the-life").durationSeconds >= 3600)
    }

    @Test func summaryHasTheContractFieldsInOrder() throws {
        let result = try SimulationSupport.run(SimulationSupport.scenario("sustained-decode"))
        let keys = result.summary.prefix(15).map(\.0)
        #expect(keys == ["simulated_s", "tokens_generated", "energy_j", "joules_per_token", "battery_start_pct",
                         "battery_end_pct", "peak_skin_c", "peak_soc_c", "seconds_at_or_above_severe", "throttled_s",
                         "ttft_p50_s", "ttft_p95_s", "decode_tok_s_p50", "requests_completed", "requests_missed_deadline"])
        let object = try JSONSerialization.jsonObject(with: Data(result.summaryJSON.utf8)) as! [String: Any]
        #expect(object["simulated_s"] as? Double == 600)
        #expect(result.recorder.csv().hasPrefix("t_s,skin_c,soc_c,battery_pct,battery_v,power_w,soc_power_w,tok_s,thermal_status,throttle_level"))
        #expect(result.recorder.samples.count == 600)
    }

    @Test func sustainedDecodeKeepsTheCPUBusyAndThrottles() throws {
        let result = try SimulationSupport.run(SimulationSupport.scenario("sustained-decode"))
        let busy = result.recorder.samples.map(\.busyFraction).reduce(0, +) / Double(result.recorder.samples.count)
        #expect(busy > 0.99)
        let first = result.recorder.samples.prefix(30).map(\.tokensPerSecond).reduce(0, +) / 30
        let last = result.recorder.samples.suffix(60).map(\.tokensPerSecond).reduce(0, +) / 60
        #expect(last < 0.7 * first, "throughput \(first) → \(last) tok/s")
        #expect(result.recorder.throttledSeconds > 0)
        #expect(result.tokensGenerated > 10_000)
    }

    @Test func runsAreDeterministic() throws {
        let scenario = try SimulationSupport.scenario("day-in-the-life")
        let first = try SimulationSupport.run(scenario), second = try SimulationSupport.run(scenario)
        #expect(first.summaryJSON == second.summaryJSON)
        #expect(first.recorder.csv() == second.recorder.csv())
    }

    @Test func dayInTheLifeSimulatesFastInCostModel() throws {
        let start = Date()
        let result = try SimulationSupport.run(SimulationSupport.scenario("day-in-the-life"))
        #expect(Date().timeIntervalSince(start) <= 60)
        #expect(abs(result.simulatedSeconds - 7200) < 1e-6)
        #expect(result.completed.count == result.requests.count)
        #expect(result.memoryPressureEvents == 1)
    }

    @Test func interactiveWorkGoesBeforeBackground() throws {
        let scenario = try SimulationSupport.scenario(json: """
        {"name":"order","description":"","duration_s":120,"start":{"battery_pct":80,"ambient_c":25},
         "events":[{"at_s":0,"type":"summarize","notes":3,"prompt_tokens":400,"response_tokens":40},
                   {"at_s":0,"type":"chat","prompt_tokens":50,"response_tokens":20}]}
        """)
        let result = try SimulationSupport.run(scenario)
        let chat = try #require(result.requests.first { $0.kind == .chat })
        let chatDone = try #require(chat.finishedTime)
        for note in result.requests where note.kind == .summarize {
            let noteStart = try #require(note.started)
            #expect(chatDone <= noteStart)
        }
        #expect(result.completed.count == 4)
    }

    @Test func missedDeadlinesAreCounted() throws {
        let scenario = try SimulationSupport.scenario(json: """
        {"name":"late","description":"","duration_s":60,"start":{"battery_pct":80,"ambient_c":25},
         "events":[{"at_s":0,"type":"background","prompt_tokens":2000,"response_tokens":100,"deadline_s":0.5}]}
        """)
        let result = try SimulationSupport.run(scenario)
        #expect(result.summary.first { $0.0 == "requests_missed_deadline" }?.1 == .integer(1))
    }

    @Test func chargingRaisesTheBattery() throws {
        let scenario = try SimulationSupport.scenario(json: """
        {"name":"charge","description":"","duration_s":1800,"start":{"battery_pct":40,"ambient_c":25,"screen_on":false},
         "events":[{"at_s":60,"type":"plug"}]}
        """)
        let result = try SimulationSupport.run(scenario)
        #expect(result.batteryEndPercent > 40 + 5)
        #expect(result.recorder.samples.last!.pluggedIn)
    }

    @Test func batteryPerRequestSaysWhatWasDrawnAndTheNetChangeApart() throws {
        // Unplugged for a minute (the question is answered from the battery), then charging.
        let scenario = try SimulationSupport.scenario(json: """
        {"name":"charge","description":"","duration_s":1800,"start":{"battery_pct":40,"ambient_c":25},
         "events":[{"at_s":5,"type":"chat","prompt_tokens":40,"response_tokens":50},{"at_s":60,"type":"plug"}]}
        """)
        let result = try SimulationSupport.run(scenario)
        #expect(result.completed.count == 1)
        // The net change is negative (the charger put back more than the phone drew)…
        #expect(result.batteryPercentPerCompletedRequest < 0)
        // …what the battery delivered is not: the first minute's drain, whatever came back after.
        #expect(result.batteryDrawnPercentPerCompletedRequest > 0)
        #expect(result.batteryDrawnPercentPerCompletedRequest < 1)
        let keys = result.summary.map(\.0)
        #expect(keys.contains("battery_drawn_pct_per_request") && keys.contains("battery_pct_per_request"))
    }

    @Test func hotAmbientRaisesTheSkin() throws {
        func peak(_ ambient: Double) throws -> Double {
            let scenario = try SimulationSupport.scenario(json: """
            {"name":"heat","description":"","duration_s":600,"start":{"battery_pct":80,"ambient_c":\(ambient)},
             "events":[{"at_s":0,"type":"chat","prompt_tokens":100,"response_tokens":400,"back_to_back":true,"until_s":600}]}
            """)
            return try SimulationSupport.run(scenario).recorder.peakSkinCelsius
        }
        let hot = try peak(35), mild = try peak(25)
        #expect(hot > mild + 3)
    }

    @Test func reportIsOneSelfContainedPage() throws {
        let result = try SimulationSupport.run(SimulationSupport.scenario("day-in-the-life"))
        let html = HTMLReport.render([result], profile: try SimulationSupport.profile("flagship-android"))
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(html.components(separatedBy: "<svg").count - 1 >= 6)
        #expect(!html.contains("<script src") && !html.contains("<link "))
        for heading in ["Skin temperature", "Tokens per second", "Throttle level", "Power", "Battery", "Summary"] {
            #expect(html.contains(heading))
        }
    }
}

@Suite struct ScenarioErrorTests {
    func expectError(_ json: String, field: String, reasonContains: String) {
        #expect {
            _ = try SimulationSupport.scenario(json: json)
        } throws: { error in
            guard let error = error as? DeviceError else { return false }
            return error.field == field && error.description.contains(reasonContains) && error.description.hasPrefix("inline.json: ")
        }
    }

    let header = "\"name\":\"x\",\"description\":\"\",\"duration_s\":60,\"start\":{\"battery_pct\":50,\"ambient_c\":25}"

    @Test func unknownEventType() {
        expectError("{\(header),\"events\":[{\"at_s\":0,\"type\":\"dance\"}]}", field: "events[0].type", reasonContains: "unknown event type 'dance'")
    }

    @Test func unknownEventField() {
        expectError("{\(header),\"events\":[{\"at_s\":0,\"type\":\"chat\",\"prompt\":\"hi\",\"tokens\":5}]}", field: "events[0].tokens",
                    reasonContains: "unknown field 'tokens'")
    }

    @Test func chatWithoutPrompt() {
        expectError("{\(header),\"events\":[{\"at_s\":0,\"type\":\"chat\"}]}", field: "events[0]", reasonContains: "needs 'prompt' or 'prompt_tokens'")
    }

    @Test func missingStart() {
        expectError("{\"name\":\"x\",\"description\":\"\",\"duration_s\":60,\"events\":[]}", field: "start", reasonContains: "missing")
    }

    @Test func ambientInKelvin() {
        expectError("{\(header),\"events\":[{\"at_s\":0,\"type\":\"ambient\",\"celsius\":300}]}", field: "events[0].celsius", reasonContains: "°C")
    }

    @Test func eventAfterTheEnd() {
        expectError("{\(header),\"events\":[{\"at_s\":90,\"type\":\"unplug\"}]}", field: "events[0].at_s", reasonContains: "within the scenario")
    }

    @Test func durationAsString() {
        expectError("{\"name\":\"x\",\"description\":\"\",\"duration_s\":\"10 min\",\"start\":{\"battery_pct\":50,\"ambient_c\":25},\"events\":[]}",
                    field: "duration_s", reasonContains: "expected a number")
    }

    @Test func invalidJSON() {
        expectError("{\"name\": [", field: "", reasonContains: "not valid JSON")
    }

    @Test func unknownMemoryPressureLevel() {
        expectError("{\(header),\"events\":[{\"at_s\":0,\"type\":\"memory_pressure\",\"level\":\"high\"}]}", field: "events[0].level", reasonContains: "must be one of")
    }

    func chat(_ fields: String) -> String {
        "{\(header),\"events\":[{\"at_s\":0,\"type\":\"chat\",\"prompt_tokens\":10,\(fields)}]}"
    }

    @Test func unknownTopLevelField() {
        expectError("{\(header),\"events\":[],\"speed\":2}", field: "speed", reasonContains: "unknown field 'speed'; expected one of description, duration_s")
    }

    @Test func unknownStartField() {
        expectError("{\"name\":\"x\",\"description\":\"\",\"duration_s\":60,\"start\":{\"battery_pct\":50,\"ambient_c\":25,\"humidity\":40},\"events\":[]}",
                    field: "start.humidity", reasonContains: "unknown field 'humidity'")
    }

    @Test func duplicateTopLevelKey() {
        expectError("{\(header),\"duration_s\":7200,\"events\":[]}", field: "duration_s", reasonContains: "written twice")
    }

    @Test func duplicateKeyInAnEvent() {
        expectError(chat("\"response_tokens\":5,\"response_tokens\":50000"), field: "events[0].response_tokens", reasonContains: "written twice")
    }

    @Test func repeatEveryNanosecond() {
        expectError(chat("\"repeat_every_s\":1e-9,\"until_s\":60"), field: "events[0].repeat_every_s", reasonContains: "0.01")
    }

    @Test func repeatsBeyondTheRequestLimit() {
        let json = "{\"name\":\"x\",\"description\":\"\",\"duration_s\":7200,\"start\":{\"battery_pct\":50,\"ambient_c\":25},"
            + "\"events\":[{\"at_s\":0,\"type\":\"chat\",\"prompt_tokens\":10,\"repeat_every_s\":0.01,\"until_s\":7200}]}"
        expectError(json, field: "events[0]", reasonContains: "720001 requests (this event 720001); at most 1000")
    }

    @Test func notesAddUpAcrossEvents() {
        let note = "{\"at_s\":0,\"type\":\"summarize\",\"notes\":600}"
        expectError("{\(header),\"events\":[\(note),\(note)]}", field: "events[1]", reasonContains: "1200 requests")
    }

    @Test func fractionalWholeNumber() {
        expectError("{\(header),\"events\":[{\"at_s\":0,\"type\":\"chat\",\"prompt_tokens\":2.5}]}", field: "events[0].prompt_tokens",
                    reasonContains: "whole number")
    }

    @Test(arguments: [("\"deadline_s\":-5", "deadline_s"), ("\"deadline_s\":1e300", "deadline_s"), ("\"deadline_s\":1e999", "deadline_s"),
                      ("\"think_s\":-1,\"back_to_back\":true,\"count\":2", "think_s"), ("\"until_s\":90", "until_s"),
                      ("\"count\":1000000000", "count"), ("\"priority\":99999999", "priority"),
                      ("\"response_tokens\":-3", "response_tokens"), ("\"max_tokens\":NaN", "max_tokens")])
    func numbersOutOfRange(_ fields: String, _ field: String) {
        expectError(chat(fields), field: "events[0].\(field)", reasonContains: "events[0].\(field): ")
    }

    @Test func untilBeforeTheEvent() {
        let json = "{\(header),\"events\":[{\"at_s\":30,\"type\":\"chat\",\"prompt_tokens\":10,\"repeat_every_s\":5,\"until_s\":10}]}"
        expectError(json, field: "events[0].until_s", reasonContains: "from at_s to the scenario's end")
    }

    @Test func promptLongerThanTheContext() {
        let words = String(repeating: "word ", count: 400_000)
        expectError(chat("\"prompt\":\"\(words)\""), field: "events[0].prompt", reasonContains: "at most 524288 bytes (131072 tokens")
    }

    @Test func labelCopiedIntoEveryRequestIsBounded() {
        expectError(chat("\"label\":\"\(String(repeating: "x", count: 10_000))\""), field: "events[0].label", reasonContains: "longer than 200")
    }
}

@Suite struct SimulationBoundsTests {
    func runner(_ json: String, workload: ModelWorkload = SimulationSupport.workload) throws -> SimulationRunner {
        SimulationRunner(profile: try SimulationSupport.profile("flagship-android"), scenario: try SimulationSupport.scenario(json: json),
                         workload: workload)
    }

    func run(_ runner: SimulationRunner) throws -> SimulationResult {
        var policy = RacePolicy()
        var engine = CostModelEngine()
        return try runner.run(policy: &policy, engine: &engine)
    }

    let idle = "{\"name\":\"idle\",\"description\":\"\",\"duration_s\":600,\"start\":{\"battery_pct\":50,\"ambient_c\":25},\"events\":[]}"

    @Test(arguments: [1e-9, 1e-6, 0.001, 0, -1, .nan, .infinity, 7200])
    func sampleIntervalOutsideTheResolution(_ interval: Double) throws {
        var runner = try runner(idle)
        runner.sampleInterval = interval
        let start = Date()
        #expect {
            _ = try run(runner)
        } throws: { error in
            (error as? SimulationError)?.field == "sample_interval_s" && "\(error)".contains("0.01…3600 seconds")
        }
        #expect(Date().timeIntervalSince(start) < 1)
    }

    @Test func samplesOverTheScenarioAreBounded() throws {
        var runner = try runner(idle.replacingOccurrences(of: "\"duration_s\":600", with: "\"duration_s\":604800"))
        runner.sampleInterval = 0.01
        #expect {
            _ = try run(runner)
        } throws: { error in
            (error as? SimulationError)?.field == "sample_interval_s"
                && "\(error)".contains("makes 60480000 timeline samples; at most 1000000 (use an interval of at least 0.605 s)")
        }
        runner.sampleInterval = 0.01
        var short = try self.runner(idle)
        short.sampleInterval = 0.01
        #expect(try run(short).recorder.samples.count == 60_000)
    }

    @Test func scenarioBuiltInCodeIsCheckedToo() throws {
        var scenario = try SimulationSupport.scenario(json: idle)
        var event = Scenario.Event(atSeconds: 0, type: .chat)
        event.promptTokens = 10
        event.repeatEverySeconds = 1e-9
        scenario.events = [event]
        let runner = SimulationRunner(profile: try SimulationSupport.profile("flagship-android"), scenario: scenario,
                                      workload: SimulationSupport.workload)
        #expect {
            _ = try run(runner)
        } throws: { error in
            (error as? SimulationError)?.field == "events[0].repeat_every_s"
        }
    }

    @Test func backToBackRepeatsStopAtTheRequestLimit() throws {
        let runner = try runner("""
        {"name":"flood","description":"","duration_s":86400,"start":{"battery_pct":100,"ambient_c":20,"plugged_in":true},
         "events":[{"at_s":0,"type":"chat","prompt_tokens":1,"response_tokens":1,"back_to_back":true,"until_s":86400}]}
        """)
        #expect {
            _ = try run(runner)
        } throws: { error in
            (error as? SimulationError)?.field == "events[0]" && "\(error)".contains("1000 requests")
        }
    }

    @Test func runEndsAtTheScenarioDurationWhenAStepIsStillRunning() throws {
        // Prompt chunks at positions near 100,000 of a 7B model take seconds each: the last one straddles the end.
        let runner = try runner("""
        {"name":"long","description":"","duration_s":120,"start":{"battery_pct":90,"ambient_c":25},
         "events":[{"at_s":0,"type":"chat","prompt_tokens":131072,"response_tokens":10}]}
        """, workload: try #require(ModelWorkload.catalog["llama-7b-q4_0"]))
        let result = try run(runner)
        #expect(abs(result.simulatedSeconds - 120) < 1e-6)
        #expect(result.summary.first { $0.0 == "simulated_s" }?.1 == .number(120, 1))
        let request = try #require(result.requests.first)
        #expect(!request.isFinished)
        #expect(request.prefilledTokens < request.promptTokens)
        #expect(result.recorder.samples.count == 120)
    }

    @Test func shippedScenariosEndAtTheirDuration() throws {
        for name in ["sustained-decode", "long-prompt-burst", "low-battery"] {
            let scenario = try SimulationSupport.scenario(name)
            let result = try SimulationSupport.run(scenario)
            #expect(result.shutdownReason != nil || abs(result.simulatedSeconds - scenario.durationSeconds) < 1e-6, "\(name): \(result.simulatedSeconds)")
        }
    }
}

/// The scenario generator of `ember sim fuzz`, the property checks, and the reader.
@Suite struct FuzzAndReaderTests {
    @Test func generatedScenariosAreValidAndAFunctionOfTheirSeed() throws {
        let generator = ScenarioGenerator()
        var types = Set<Scenario.Event.Kind>()
        for seed in UInt64(1)...200 {
            let scenario = generator.scenario(seed: seed)
            try scenario.validate(file: "seed \(seed)")
            #expect(scenario == generator.scenario(seed: seed))
            #expect((-10...45).contains(scenario.start.ambientCelsius) && (5...100).contains(scenario.start.batteryPercent))
            types.formUnion(scenario.events.map(\.type))
        }
        #expect(types == Set(Scenario.Event.Kind.allCases), "every event type is drawn")
        #expect(generator.scenario(seed: 1) != generator.scenario(seed: 2))
    }

    @Test func aRunHoldsEveryPropertyAgainstItselfAndAShutdownFailsOne() throws {
        let profile = try SimulationSupport.profile("low-end-android")
        let scenario = ScenarioGenerator().scenario(seed: 7)
        let runner = SimulationRunner(profile: profile, scenario: scenario, workload: SimulationSupport.workload)
        var race = RacePolicy()
        var engine = CostModelEngine()
        let result = try runner.run(policy: &race, engine: &engine)
        let failures = PolicyProperty.failures(race: result, adaptive: result, profile: profile,
                                               prefillChunkTokens: runner.prefillChunkTokens)
        #expect(failures[.deadlines] == nil && failures[.severe] == nil && failures[.energyPerRequest] == nil
                && failures[.shutdown] == nil)
        // A phone that browns out: the same scenario from an empty battery.
        var empty = scenario
        empty.start.batteryPercent = 0
        empty.start.pluggedIn = false
        empty.events.removeAll { $0.type == .plug }
        var emptyRace = RacePolicy()
        let browned = try SimulationRunner(profile: profile, scenario: empty, workload: SimulationSupport.workload).run(policy: &emptyRace, engine: &engine)
        #expect(browned.shutdownReason != nil)
        #expect(PolicyProperty.failures(race: result, adaptive: browned, profile: profile,
                                        prefillChunkTokens: runner.prefillChunkTokens)[.shutdown] != nil)
    }

    @Test func theNextQuestionComesAfterTheReplyWasRead() throws {
        let scenario = try SimulationSupport.scenario(json: """
            {"name": "reader", "description": "", "duration_s": 600, "start": {"battery_pct": 80, "ambient_c": 22},
             "events": [{"at_s": 0, "type": "chat", "prompt_tokens": 20, "response_tokens": 114, "back_to_back": true,
                         "think_s": 5, "count": 2}]}
            """)
        let result = try SimulationSupport.run(scenario)
        let first = result.requests[0], second = result.requests[1]
        // 114 tokens at 5.7 tokens/s take 20 s to read, longer than the reply takes to stream.
        let read = Reader.finishedReading(firstToken: first.firstTokenTime!, lastToken: first.finishedTime!, tokens: 114)
        #expect(abs(read - (first.firstTokenTime! + 20)) < 1e-6)
        #expect(abs(second.arrival - (read + 5)) < 1e-6)
    }
}

/// A run drained past the scenario's end (`SimulationRunner.drainSeconds`): the work a policy's
/// pace leaves unfinished at the end is finished and read, so energy per completed request
/// compares the same work (issue 20, `ember sim fuzz`).
@Suite struct DrainTests {
    /// A reply the scenario's end cuts off: 400 tokens asked 5 s before the end.
    static let cutOff = """
    {"name":"cut","description":"","duration_s":60,"start":{"battery_pct":80,"ambient_c":25},
     "events":[{"at_s":10,"type":"chat","prompt_tokens":40,"response_tokens":60},
               {"at_s":55,"type":"chat","prompt_tokens":40,"response_tokens":400,"max_tokens":400}]}
    """

    static func run(drain: Double, policy: some SchedulingPolicy) throws -> SimulationResult {
        var runner = SimulationRunner(profile: try SimulationSupport.profile("low-end-android"),
                                      scenario: try SimulationSupport.scenario(json: cutOff), workload: SimulationSupport.workload)
        runner.drainSeconds = drain
        var policy = policy
        var engine = CostModelEngine()
        return try runner.run(policy: &policy, engine: &engine)
    }

    @Test func aRequestCutOffByTheEndIsFinishedAndReadInTheDrain() throws {
        let window = try Self.run(drain: 0, policy: AdaptivePolicy())
        let drained = try Self.run(drain: 3600, policy: AdaptivePolicy())
        // The scenario's window is what it was: the late reply is not completed there.
        #expect(window.drained == nil)
        #expect(window.completed.count == 1 && drained.completed.count == 1)
        #expect(drained.simulatedSeconds == 60)
        #expect(abs(drained.recorder.energyJoules - window.recorder.energyJoules) < 1e-6 * window.recorder.energyJoules)
        // Drained, both replies are done, and the run lasts until the long one has been read.
        let run = try #require(drained.drained)
        #expect(run.completedRequests == 2)
        #expect(run.endSeconds >= 55 + 400 / Reader.tokensPerSecond - 1)
        #expect(run.energyJoules > drained.recorder.energyJoules)
        let keys = drained.summary.map(\.0)
        #expect(keys.suffix(3) == ["drained_end_s", "drained_energy_j", "drained_energy_j_per_request"])
        #expect(!window.summary.map(\.0).contains("drained_end_s"))
    }

    @Test func twoPoliciesAreMeasuredOverTheSameWindow() throws {
        let race = try #require(try Self.run(drain: 3600, policy: RacePolicy()).drained)
        let adaptive = try #require(try Self.run(drain: 3600, policy: AdaptivePolicy()).drained)
        #expect(race.completedRequests == adaptive.completedRequests)
        // Extending a run idles the phone on: more energy, never less; no earlier than the end, none.
        let end = max(race.endSeconds, adaptive.endSeconds) + 60
        #expect(race.energyJoules(through: end) > race.energyJoules)
        #expect(race.energyJoules(through: race.endSeconds - 10) == race.energyJoules)
        #expect(abs(race.joulesPerCompletedRequest(through: end) * 2 - race.energyJoules(through: end)) < 1e-9)
    }

    @Test func theFuzzEnergyPropertyComparesDrainedRuns() throws {
        let profile = try SimulationSupport.profile("low-end-android")
        let race = try Self.run(drain: 3600, policy: RacePolicy())
        let adaptive = try Self.run(drain: 3600, policy: AdaptivePolicy())
        let found = PolicyProperty.failures(race: race, adaptive: adaptive, profile: profile, prefillChunkTokens: 128)
        #expect(found[.energyPerRequest] == nil)
        // A run's own comparison with itself over a longer window than its own is still equal.
        #expect(PolicyProperty.failures(race: adaptive, adaptive: adaptive, profile: profile, prefillChunkTokens: 128)[.energyPerRequest] == nil)
    }

    @Test func drainOutsideItsRangeIsRefused() throws {
        var runner = SimulationRunner(profile: try SimulationSupport.profile("low-end-android"),
                                      scenario: try SimulationSupport.scenario(json: Self.cutOff), workload: SimulationSupport.workload)
        runner.drainSeconds = -1
        #expect(throws: SimulationError.self) { try runner.validate() }
        runner.drainSeconds = Double.infinity
        #expect(throws: SimulationError.self) { try runner.validate() }
    }
}

/// Failures `ember sim fuzz` found (issue 20), each rebuilt as a scenario of its own and checked
/// with the fuzz's property check on drained runs, race against adaptive.
@Suite struct FuzzFailureTests {
    static func properties(_ json: String, profile name: String) throws -> (race: SimulationResult, adaptive: SimulationResult,
                                                                            failures: [PolicyProperty: String]) {
        let profile = try SimulationSupport.profile(name)
        var runner = SimulationRunner(profile: profile, scenario: try SimulationSupport.scenario(json: json), workload: SimulationSupport.workload)
        runner.drainSeconds = 3600
        var race = RacePolicy(), adaptive = AdaptivePolicy()
        var engine = CostModelEngine()
        let raced = try runner.run(policy: &race, engine: &engine)
        let adapted = try runner.run(policy: &adaptive, engine: &engine)
        return (raced, adapted, PolicyProperty.failures(race: raced, adaptive: adapted, profile: profile,
                                                        prefillChunkTokens: runner.prefillChunkTokens))
    }

    /// A background prompt on a throttled phone (a 44.5 °C room, screen on): 60 ms steps held a
    /// few tokens each, every step reading all the weights; its prompt cost 7.0 J against race's
    /// 6.5 J and the phone's energy per request came out above race's.
    @Test func backgroundPromptStepsOnAThrottledPhoneCostNoMoreThanRaces() throws {
        let (race, adaptive, failures) = try Self.properties("""
            {"name":"warm-room","description":"","duration_s":2240,
             "start":{"ambient_c":44.5,"battery_pct":58,"plugged_in":false,"screen_on":true,"skin_c":30,"soc_c":33},
             "events":[{"at_s":1091,"type":"background","prompt_tokens":1131,"response_tokens":153,"max_tokens":512}]}
            """, profile: "tablet")
        #expect(failures[.energyPerRequest] == nil, "\(failures)")
        #expect(adaptive.prefillJoules <= race.prefillJoules * 1.001)
    }

    /// A batch of 19 notes due in 108 s, long chat prompts arriving beside it, on the low-end
    /// phone: with each note's slack counting its own work only, every note had time until none
    /// had, and the 15th missed its deadline where race met it. The slack counts the notes ahead.
    @Test func aBatchOfNotesCountsTheNotesAheadOfEachInItsSlack() throws {
        let (race, adaptive, failures) = try Self.properties("""
            {"name":"notes-and-chats","description":"","duration_s":590,
             "start":{"ambient_c":-9,"battery_pct":29,"plugged_in":true,"screen_on":true,"skin_c":30,"soc_c":33.5},
             "events":[{"at_s":55,"type":"summarize","notes":19,"prompt_tokens":741,"response_tokens":115,"deadline_s":108,"max_tokens":512},
                       {"at_s":61,"type":"chat","prompt_tokens":1796,"response_tokens":140,"repeat_every_s":150,"count":3,"max_tokens":512},
                       {"at_s":77,"type":"chat","prompt_tokens":120,"response_tokens":314,"back_to_back":true,"think_s":13,"until_s":309,"max_tokens":512},
                       {"at_s":115,"type":"memory_pressure","level":"critical"},
                       {"at_s":147,"type":"summarize","notes":11,"prompt_tokens":647,"response_tokens":52,"deadline_s":102,"max_tokens":512},
                       {"at_s":167,"type":"unplug"},{"at_s":429,"type":"plug"}]}
            """, profile: "low-end-android")
        #expect(failures[.deadlines] == nil, "\(failures)")
        #expect(adaptive.requests.filter(\.missedDeadline).count <= race.requests.filter(\.missedDeadline).count)
    }

    /// A 15-note batch that is out of slack from its arrival (race misses three of its deadlines)
    /// in a 42.5 °C room: its prompts run as race's steps, not spread over every core with a target
    /// the throttled phone cannot meet (every core at the clock cap: SEVERE sooner than race).
    @Test func aBatchOutOfSlackInAHotRoomRunsAtRacesSettings() throws {
        let (race, adaptive, failures) = try Self.properties("""
            {"name":"hot-room-notes","description":"","duration_s":440,
             "start":{"ambient_c":42.5,"battery_pct":91,"plugged_in":true,"screen_on":true,"skin_c":42,"soc_c":43.5},
             "events":[{"at_s":122,"type":"summarize","notes":15,"prompt_tokens":545,"response_tokens":80,"deadline_s":303,"max_tokens":512},
                       {"at_s":189,"type":"low_power_mode","on":true},{"at_s":239,"type":"low_power_mode","on":true}]}
            """, profile: "low-end-android")
        #expect(failures.isEmpty, "\(failures)")
        #expect(adaptive.requests.filter(\.missedDeadline).count <= race.requests.filter(\.missedDeadline).count)
    }

    /// Two chat bursts on the low-end phone at 5 % battery: a reply its reader had caught up with
    /// ran on the one calibrated thread (6 tokens/s under the battery's peak-power limit, race's
    /// four threads 12–13), and a question behind it waited 22.7 s for its first token (race 15.3 s).
    @Test func aReplyWhosePersonWaitsRunsOnRacesThreads() throws {
        let (_, _, failures) = try Self.properties("""
            {"name":"low-battery-chats","description":"","duration_s":970,
             "start":{"ambient_c":2.5,"battery_pct":5,"plugged_in":false,"screen_on":true,"skin_c":10,"soc_c":12},
             "events":[{"at_s":232,"type":"chat","prompt_tokens":235,"response_tokens":217,"repeat_every_s":87,"count":8,"max_tokens":512},
                       {"at_s":562,"type":"chat","prompt_tokens":280,"response_tokens":168,"repeat_every_s":72,"count":7,"max_tokens":512},
                       {"at_s":726,"type":"summarize","notes":8,"prompt_tokens":372,"response_tokens":111,"deadline_s":7038,"max_tokens":512},
                       {"at_s":738,"type":"background","prompt_tokens":662,"response_tokens":211,"max_tokens":512}]}
            """, profile: "low-end-android")
        #expect(failures.isEmpty, "\(failures)")
    }

    /// Seconds at SEVERE are compared to one thermal poll: a phone reports its thermal status once
    /// a poll, so two runs whose SEVERE episodes differ by less cannot be told apart on it.
    @Test func severeSecondsAreComparedToOneThermalPoll() throws {
        let profile = try SimulationSupport.profile("low-end-android")
        let scenario = try SimulationSupport.scenario(json: """
            {"name":"hot","description":"","duration_s":300,"start":{"ambient_c":43,"battery_pct":80,"skin_c":46,"soc_c":48},
             "events":[{"at_s":10,"type":"chat","prompt_tokens":200,"response_tokens":200}]}
            """)
        let runner = SimulationRunner(profile: profile, scenario: scenario, workload: SimulationSupport.workload)
        var race = RacePolicy()
        var engine = CostModelEngine()
        let raced = try runner.run(policy: &race, engine: &engine)
        let idle = try #require(raced.idleSevereSeconds)
        #expect(raced.recorder.secondsAtOrAboveSevere > 2)
        let poll = profile.thermal.governor.pollSeconds
        var within = raced, beyond = raced
        within.idleSevereSeconds = idle - 0.9 * poll
        beyond.idleSevereSeconds = idle - 1.1 * poll
        func severe(_ adaptive: SimulationResult) -> String? {
            PolicyProperty.failures(race: raced, adaptive: adaptive, profile: profile, prefillChunkTokens: runner.prefillChunkTokens)[.severe]
        }
        #expect(severe(within) == nil)
        #expect(severe(beyond) != nil)
    }
}
