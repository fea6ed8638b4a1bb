import ArgumentParser
import EmberCore
import EmberDevice
import EmberScheduler
import EmberSimulation
import Foundation

/// Runs one scenario under several policies in cost-model mode.
/// The idle baseline (the scenario without requests, for `severe_s_above_idle`) is simulated once.
func comparePolicies(_ policies: [PolicyName], profile: DeviceProfile, scenario: Scenario,
                     workload: ModelWorkload, sampleInterval: Double, drainSeconds: Double = 0) throws -> [SimulationResult] {
    var baseline = SimulationRunner(profile: profile, scenario: scenario, workload: workload)
    baseline.sampleInterval = sampleInterval
    let idleSevere = try baseline.idleSevereSeconds()
    return try policies.map { name in
        var runner = SimulationRunner(profile: profile, scenario: scenario, workload: workload)
        runner.sampleInterval = sampleInterval
        runner.idleBaseline = false
        runner.drainSeconds = drainSeconds
        // Batched decoding holds one KV cache per sequence: as many as the app's memory limit leaves room for.
        if let fit = try? SimRunCommand.fit(workload, limit: profile.appMemoryLimitBytes, profile: profile) {
            runner.maximumDecodeBatch = SimRunCommand.decodeBatchLimit(budget: profile.appMemoryLimitBytes, planned: fit.bytes,
                                                                    perSequence: SimRunCommand.sequenceBytes(workload))
        } else {
            runner.maximumDecodeBatch = 1
        }
        var policy = name.make()
        var engine = CostModelEngine()
        let start = MonotonicClock.nanoseconds()
        var result = try runner.run(policy: &policy, engine: &engine)
        result.wallSeconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
        result.idleSevereSeconds = idleSevere
        return result
    }
}

func parsePolicies(_ text: String) throws -> [PolicyName] {
    try SimulatorFiles.list(text, option: "--policies").map { name in
        guard let policy = PolicyName(rawValue: String(name)) else {
            throw ValidationError("unknown policy '\(name)'; known: \(PolicyName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return policy
    }
}

/// `ember sim compare`: policies side by side on one profile and scenario.
struct SimCompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Run one scenario under several policies and set them side by side (table, JSON, report).")

    @Option(name: .long, help: "Comma-separated policies.")
    var policies: String = "race,adaptive"

    @Option(name: .long, help: "A device profile name in Profiles/ or a JSON path.")
    var profile: String = "flagship-android"

    @Option(name: .long, help: "A scenario name in Simulator/Scenarios/ or a JSON path.")
    var scenario: String = "day-in-the-life"

    @Flag(name: .long, help: "Print {\"policies\": {name: summary, …}} as JSON.")
    var json = false

    @Option(name: .long, help: "Write an HTML report with every policy overlaid.")
    var report: String?

    @Flag(name: .long, help: "Replace --report if it already exists (never a device, a directory or an input).")
    var overwrite = false

    @Flag(name: .long, help: "Let each run go on past the scenario's end, without new arrivals, until what arrived is done and read (up to an hour); adds drained_* fields (as `ember sim fuzz` measures energy per request).")
    var drain = false

    @OptionGroup var options: SimulationOptions

    func run() throws {
        let names = try parsePolicies(policies)
        try OutputFiles([("--report", report)], overwrite: overwrite)
            .check(inputs: SimulatorFiles.inputs(profiles: [profile], scenarios: [scenario], options: options))
        let deviceProfile = try SimulatorFiles.profile(profile)
        let results = try comparePolicies(names, profile: deviceProfile, scenario: SimulatorFiles.scenario(scenario),
                                          workload: options.workload(), sampleInterval: options.sampleInterval,
                                          drainSeconds: drain ? SimFuzzCommand.drainSeconds : 0)
        if let report {
            try write(HTMLReport.render(results, profile: deviceProfile,
                                        title: "Ember policies compared: \(results[0].scenario) on \(deviceProfile.name)"), to: report)
        }
        if json {
            print("{\"policies\":{" + results.map { "\"\($0.policy)\":\($0.summaryJSON)" }.joined(separator: ",") + "}}")
            return
        }
        let summaries = results.map(\.summary)
        let header = "field".padding(toLength: 28, withPad: " ", startingAt: 0)
            + results.map { $0.policy.padding(toLength: 18, withPad: " ", startingAt: 0) }.joined()
        print(header)
        for (row, entry) in summaries[0].enumerated() {
            print(entry.0.padding(toLength: max(28, entry.0.count + 1), withPad: " ", startingAt: 0)
                  + summaries.map { $0[row].1.text.padding(toLength: 18, withPad: " ", startingAt: 0) }.joined())
        }
        if let report { print("report: \(report)") }
    }
}

/// `ember sim matrix`: every scenario × profile, race against adaptive, as a Markdown table with
/// the scheduler's acceptance checks.
struct SimMatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Race against adaptive on every scenario × profile: a Markdown table with the scheduler's checks.")

    @Option(name: .long, help: "Comma-separated profiles.")
    var profiles: String = "low-end-android,flagship-android,iphone-pro,tablet"

    @Option(name: .long, help: "Comma-separated scenarios.")
    var scenarios: String = "hot-day-chat,overnight-summarize,low-battery,long-prompt-burst,mixed-day"

    @Flag(name: .long, help: "Print {\"model\", \"cells\": [{scenario, profile, race, adaptive, checks} or {scenario, profile, error}]} as JSON.")
    var json = false

    @OptionGroup var options: SimulationOptions

    func run() throws {
        let profileList = try SimulatorFiles.list(profiles, option: "--profiles").map(SimulatorFiles.profile)
        let scenarioList = try SimulatorFiles.list(scenarios, option: "--scenarios").map(SimulatorFiles.scenario)
        let workload = try options.workload()
        var jobs: [(Scenario, DeviceProfile)] = []
        for scenario in scenarioList { for profile in profileList { jobs.append((scenario, profile)) } }
        let pairs = jobs
        let rows = LockedArray(count: pairs.count)
        let cells = LockedArray(count: pairs.count)
        let interval = options.sampleInterval
        DispatchQueue.concurrentPerform(iterations: pairs.count) { index in
            let (scenario, profile) = pairs[index]
            let names = "\"scenario\":\(JSONText.string(scenario.name)),\"profile\":\(JSONText.string(profile.name))"
            do {
                let results = try comparePolicies([.race, .adaptive], profile: profile, scenario: scenario,
                                                  workload: workload, sampleInterval: interval)
                rows.set(index, Self.row(race: results[0], adaptive: results[1]))
                let failures = Self.failures(race: results[0], adaptive: results[1])
                cells.set(index, "{\(names),\"race\":\(results[0].summaryJSON),\"adaptive\":\(results[1].summaryJSON),"
                          + "\"checks\":{\"pass\":\(failures.isEmpty),\"failures\":[\(failures.map(JSONText.string).joined(separator: ","))]}}")
            } catch {
                // The cell's own error, on one line (a Markdown cell cannot hold a line break or a bar).
                let text = EmberMain.oneLine(String(describing: error))
                rows.set(index, "| \(scenario.name) | \(profile.name) | error: \(text.replacingOccurrences(of: "|", with: "\\|")) | | | | | | | | |")
                cells.set(index, "{\(names),\"error\":\(JSONText.string(text))}")
            }
        }
        if json {
            print("{\"model\":\(JSONText.string(workload.name)),\"cells\":[\(cells.values.joined(separator: ","))]}")
            return
        }
        print("Model: \(workload.name). Produced by `ember sim matrix` (cost model, virtual clock).\n")
        print("| scenario | profile | s ≥ SEVERE race / adaptive | above idle race / adaptive | J/token race / adaptive (ratio) "
              + "| whole-phone J/request race / adaptive (ratio) | battery % drawn/request race / adaptive "
              + "| TTFT p95 s race / adaptive (ratio) | deadlines missed race / adaptive | tokens race / adaptive | checks |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for line in rows.values { print(line) }
    }

    static func value(_ result: SimulationResult, _ key: String) -> Double {
        result.summary.first { $0.0 == key }?.1.doubleValue ?? 0
    }

    /// The scheduler's acceptance checks adaptive fails against race: SEVERE beyond the idle
    /// phone's, whole-phone energy per completed request (what the user's battery pays), SoC
    /// energy of model work per token (never more than race's), TTFT, deadline.
    ///
    /// The SoC energy per token is no longer held to 0.75 × race's (the table still shows the
    /// ratio): how far below race it can go is the phone's clock room, not the policy's choice —
    /// where battery saver and peak-power management already hold race's clocks near the energy
    /// minimum (a low battery), no schedule reaches 0.75 ×, while the screen and board, which that
    /// ratio leaves out, are most of what the battery pays (docs/SCHEDULER.md).
    static func failures(race: SimulationResult, adaptive: SimulationResult) -> [String] {
        let severeAdaptive = adaptive.severeSecondsAboveIdle
        let joulesRace = value(race, "joules_per_token"), joulesAdaptive = value(adaptive, "joules_per_token")
        let ttftRace = value(race, "ttft_p95_s"), ttftAdaptive = value(adaptive, "ttft_p95_s")
        let joulesRatio = joulesRace > 0 ? joulesAdaptive / joulesRace : 0
        let ttftRatio = ttftRace > 0 ? ttftAdaptive / ttftRace : 0
        // A background deadline adaptive missed that race met.
        let raceMet = Set(race.requests.filter { $0.deadline != nil && !$0.missedDeadline }.map(\.label))
        let regressions = adaptive.requests.filter { $0.deadline != nil && $0.missedDeadline && raceMet.contains($0.label) }.count
        var failures: [String] = []
        if severeAdaptive > 0 { failures.append("SEVERE") }
        if adaptive.joulesPerCompletedRequest > race.joulesPerCompletedRequest * (1 + 1e-9) { failures.append("energy per request") }
        if joulesRatio > 1 { failures.append("energy per token") }
        if ttftRace > 0, ttftRatio > 1.1 { failures.append("TTFT") }
        if regressions > 0 { failures.append("deadline") }
        return failures
    }

    static func row(race: SimulationResult, adaptive: SimulationResult) -> String {
        let severeRace = value(race, "seconds_at_or_above_severe"), severeAdaptive = value(adaptive, "seconds_at_or_above_severe")
        let joulesRace = value(race, "joules_per_token"), joulesAdaptive = value(adaptive, "joules_per_token")
        let ttftRace = value(race, "ttft_p95_s"), ttftAdaptive = value(adaptive, "ttft_p95_s")
        let joulesRatio = joulesRace > 0 ? joulesAdaptive / joulesRace : 0
        let ttftRatio = ttftRace > 0 ? ttftAdaptive / ttftRace : 0
        let failures = failures(race: race, adaptive: adaptive)
        let checks = failures.isEmpty ? "pass" : "**fail: " + failures.joined(separator: ", ") + "**"
        func f(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
        let requestRatio = race.joulesPerCompletedRequest > 0 ? adaptive.joulesPerCompletedRequest / race.joulesPerCompletedRequest : 0
        return "| \(race.scenario) | \(race.profile) | \(f(severeRace, 0)) / \(f(severeAdaptive, 0)) "
            + "| \(f(race.severeSecondsAboveIdle, 0)) / \(f(adaptive.severeSecondsAboveIdle, 0)) "
            + "| \(f(joulesRace, 4)) / \(f(joulesAdaptive, 4)) (\(f(joulesRatio, 2))) "
            + "| \(f(race.joulesPerCompletedRequest, 1)) / \(f(adaptive.joulesPerCompletedRequest, 1)) (\(f(requestRatio, 3))) "
            + "| \(f(race.batteryDrawnPercentPerCompletedRequest, 3)) / \(f(adaptive.batteryDrawnPercentPerCompletedRequest, 3)) "
            + "| \(f(ttftRace, 3)) / \(f(ttftAdaptive, 3)) (\(ttftRace > 0 ? f(ttftRatio, 2) : "–")) "
            + "| \(Int(value(race, "requests_missed_deadline"))) / \(Int(value(adaptive, "requests_missed_deadline"))) "
            + "| \(race.tokensGenerated) / \(adaptive.tokensGenerated) | \(checks) |"
    }
}
