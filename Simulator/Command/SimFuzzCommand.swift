import ArgumentParser
import EmberCore
import EmberDevice
import EmberSimulation
import Foundation

/// `ember sim fuzz`: scenarios drawn from the schema's whole space, race against adaptive on every
/// profile, the scheduler's properties checked on each run; failing scenarios written as files
/// that `ember sim compare --scenario FILE` replays.
struct SimFuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Draw scenarios, run race and adaptive on every profile, and check the scheduler's properties.",
        discussion: """
        Properties checked per run (scenario × profile): \(PolicyProperty.allCases.map(\.rawValue).joined(separator: ", ")). \
        Scenario N is drawn from seed N alone, so `--seed N --count 1` replays one. Each failing scenario is written to \
        --failures/fuzz-N.json; replay it with `ember sim compare --drain --profile P --scenario FILE`.
        """)

    /// How long a run may go on past the scenario's end to finish and read what arrived (energy
    /// per request is compared on drained runs: `PolicyProperty.energyPerRequest`).
    static let drainSeconds = 3600.0

    @Option(name: .long, help: "The first scenario's seed; scenario i uses seed + i.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Scenarios to draw (1 to 100000).")
    var count: Int = 100

    @Option(name: .long, help: "Comma-separated profile names or paths.")
    var profiles: String = "low-end-android,flagship-android,iphone-pro,tablet"

    @Option(name: .long, help: "Folder for the scenario files of failing seeds (created if missing).")
    var failures: String = "fuzz-failures"

    @Flag(name: .long, help: "Replace a failing seed's scenario file that exists with other content.")
    var overwrite = false

    @Flag(name: .long, help: "Print the pass rates and failures as one JSON object.")
    var json = false

    @OptionGroup var options: SimulationOptions

    func validate() throws {
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1…100000, not \(count).") }
        guard seed <= UInt64.max - UInt64(count) else { throw ValidationError("--seed plus --count must stay below 2^64.") }
    }

    private struct Failure {
        var seed: UInt64
        var profile: String
        var property: PolicyProperty
        var reason: String
    }

    private final class Tally: @unchecked Sendable {
        // Guarded by `lock`.
        private let lock = NSLock()
        var passed: [PolicyProperty: Int] = [:]
        var runs = 0
        var failures: [Failure] = []
        var errors: [String] = []

        func add(seed: UInt64, profile: String, _ found: [PolicyProperty: String]) {
            lock.lock(); defer { lock.unlock() }
            runs += 1
            for property in PolicyProperty.allCases {
                if let reason = found[property] {
                    failures.append(Failure(seed: seed, profile: profile, property: property, reason: reason))
                } else {
                    passed[property, default: 0] += 1
                }
            }
        }

        func error(_ text: String) { lock.lock(); errors.append(text); lock.unlock() }
    }

    func run() throws {
        let profileList = try SimulatorFiles.list(profiles, option: "--profiles").map(SimulatorFiles.profile)
        let workload = try options.workload()
        let interval = options.sampleInterval
        let generator = ScenarioGenerator()
        let tally = Tally()
        let first = seed
        let start = MonotonicClock.nanoseconds()
        DispatchQueue.concurrentPerform(iterations: count) { index in
            let scenarioSeed = first + UInt64(index)
            let scenario = generator.scenario(seed: scenarioSeed)
            for profile in profileList {
                do {
                    let results = try comparePolicies([.race, .adaptive], profile: profile, scenario: scenario,
                                                      workload: workload, sampleInterval: interval, drainSeconds: Self.drainSeconds)
                    let chunk = SimulationRunner(profile: profile, scenario: scenario, workload: workload).prefillChunkTokens
                    tally.add(seed: scenarioSeed, profile: profile.name,
                              PolicyProperty.failures(race: results[0], adaptive: results[1], profile: profile, prefillChunkTokens: chunk))
                } catch {
                    tally.error("seed \(scenarioSeed) on \(profile.name): \(EmberMain.oneLine(String(describing: error)))")
                }
            }
        }
        let wall = Double(MonotonicClock.nanoseconds() - start) / 1e9
        if let error = tally.errors.first {
            throw ValidationError("\(tally.errors.count) runs could not be simulated; first: \(error)")
        }
        // One scenario file per failing seed.
        let failing = tally.failures.sorted { ($0.seed, $0.profile, $0.property.rawValue) < ($1.seed, $1.profile, $1.property.rawValue) }
        var files: [UInt64: String] = [:]
        if !failing.isEmpty {
            try FileManager.default.createDirectory(atPath: failures, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            for seed in Set(failing.map(\.seed)).sorted() {
                let path = "\(failures)/fuzz-\(seed).json"
                let text = String(decoding: try encoder.encode(generator.scenario(seed: seed)), as: UTF8.self) + "\n"
                if let existing = try? String(contentsOfFile: path, encoding: .utf8), existing != text, !overwrite {
                    throw ValidationError("\(path) exists with other content; move it or pass --overwrite.")
                }
                try write(text, to: path)
                files[seed] = path
            }
        }
        let runs = tally.runs
        if json {
            let properties = PolicyProperty.allCases.map { property in
                let passed = tally.passed[property] ?? 0
                return "\(JSONText.string(property.rawValue)):{\"passed\":\(passed),\"runs\":\(runs),"
                    + "\"rate\":\(decimal(runs > 0 ? Double(passed) / Double(runs) : 1, 4))}"
            }
            let failures = failing.map { failure in
                "{\"seed\":\(failure.seed),\"profile\":\(JSONText.string(failure.profile)),\"property\":\(JSONText.string(failure.property.rawValue)),"
                    + "\"reason\":\(JSONText.string(failure.reason)),\"scenario_file\":\(JSONText.string(files[failure.seed] ?? ""))}"
            }
            print("{\"seed\":\(seed),\"count\":\(count),\"profiles\":[\(profileList.map { JSONText.string($0.name) }.joined(separator: ","))],"
                  + "\"model\":\(JSONText.string(workload.name)),\"runs\":\(runs),\"wall_s\":\(decimal(wall, 1)),"
                  + "\"properties\":{\(properties.joined(separator: ","))},\"failures\":[\(failures.joined(separator: ","))]}")
            // A property check that failed fails the command, as a test run would; the report above says which.
            if !failing.isEmpty { throw ExitCode(1) }
            return
        }
        print("ember sim fuzz: \(count) scenarios (seeds \(seed)…\(seed + UInt64(count) - 1)) × \(profileList.count) profiles = \(runs) runs, "
              + "model \(workload.name), \(decimal(wall, 1)) s")
        print("property".padding(toLength: 20, withPad: " ", startingAt: 0) + "passed".padding(toLength: 14, withPad: " ", startingAt: 0) + "rate")
        for property in PolicyProperty.allCases {
            let passed = tally.passed[property] ?? 0
            print(property.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + "\(passed)/\(runs)".padding(toLength: 14, withPad: " ", startingAt: 0)
                  + decimal(runs > 0 ? 100 * Double(passed) / Double(runs) : 100, 2) + " %")
        }
        for failure in failing {
            let file = files[failure.seed] ?? ""
            print("seed \(failure.seed) on \(failure.profile): \(failure.property.rawValue): \(failure.reason); "
                  + "replay: ember sim compare --drain --profile \(failure.profile) --scenario \(file)")
        }
        if !failing.isEmpty { throw ExitCode(1) }
    }
}

/// `value` with `digits` decimals.
private func decimal(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
