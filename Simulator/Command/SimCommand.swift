import ArgumentParser
import Ember
import EmberModelCatalog
import EmberCore
import EmberDevice
import EmberGGUF
import EmberLM
import EmberScheduler
import EmberSimulation
import Foundation

/// `ember sim`: a scenario on a simulated phone, on a virtual clock.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Simulate a phone's heat, battery and speed while it runs a model through a scenario.",
        subcommands: [SimRunCommand.self, SimCompareCommand.self, SimMatrixCommand.self, SimSweepCommand.self, SimFuzzCommand.self],
        defaultSubcommand: SimRunCommand.self)
}

/// Scheduling policies the simulator can run.
enum PolicyName: String, CaseIterable, ExpressibleByArgument {
    case race
    case adaptive

    func make() -> any SchedulingPolicy {
        switch self {
        case .race: RacePolicy()
        case .adaptive: AdaptivePolicy()
        }
    }
}

/// Options shared by the simulator's commands.
struct SimulationOptions: ParsableArguments {
    @Option(name: .long, help: "A model alias (smollm2, gemma3) or GGUF path: its real tensors set the work per token.")
    var model: String = "smollm2"

    @Option(name: .long, help: "A named model instead of a file, for cost-model runs: <family>-<quant>, families \(ModelWorkload.families.keys.sorted().joined(separator: ", ")); quants \(ModelWorkload.bitsPerWeight.keys.sorted().joined(separator: ", ")) (e.g. gemma4-e4b-q4_k_m).")
    var modelSpec: String?

    @Option(name: .long, help: "Seconds between timeline samples (0.01 to 3600).")
    var sampleInterval: Double = 1

    func validate() throws {
        let (shortest, longest) = (SimulationRunner.minimumSampleInterval, SimulationRunner.maximumSampleInterval)
        guard sampleInterval >= shortest, sampleInterval <= longest else {
            throw ValidationError("--sample-interval must be at least \(shortest) s and at most \(Int(longest)) s, not \(sampleInterval).")
        }
        if let modelSpec, ModelWorkload.catalog[modelSpec] == nil {
            throw ValidationError("unknown --model-spec '\(modelSpec)'; use <family>-<quant> with a family of \(ModelWorkload.families.keys.sorted().joined(separator: ", ")) and a quant of \(ModelWorkload.bitsPerWeight.keys.sorted().joined(separator: ", "))")
        }
    }

    /// The workload of `--model-spec`, or of the `--model` file's tensors.
    func workload() throws -> ModelWorkload {
        if let modelSpec, let workload = ModelWorkload.catalog[modelSpec] { return workload }
        let path = try ModelCatalog.resolve(model)
        return try ModelWorkload(gguf: GGUFFile(path: path), name: model)
    }
}

/// Finds profiles and scenarios by name or path.
enum SimulatorFiles {
    /// `name` as given when it is a file; otherwise `<folder>/<name>.json` under the working
    /// directory, `EMBER_HOME`, or a parent of the executable (the repository when run from .build).
    static func locate(_ name: String, folder: String, kind: String) throws -> String {
        let manager = FileManager.default
        if manager.fileExists(atPath: name) { return name }
        var roots = [manager.currentDirectoryPath]
        if let home = ProcessInfo.processInfo.environment["EMBER_HOME"] { roots.insert(home, at: 0) }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            roots.append(directory.path)
            directory = directory.deletingLastPathComponent()
        }
        for root in roots {
            let candidate = "\(root)/\(folder)/\(name).json"
            if manager.fileExists(atPath: candidate) { return candidate }
        }
        let known = roots.lazy.compactMap { try? manager.contentsOfDirectory(atPath: "\($0)/\(folder)") }.first ?? []
        let names = known.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
        throw ValidationError("no \(kind) '\(name)': not a file, and not in \(folder)/\(names.isEmpty ? "" : " (known: \(names.joined(separator: ", ")))")")
    }

    /// The names in a comma-separated option; none is an error, not an empty run.
    static func list(_ text: String, option: String) throws -> [String] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("\(option) names nothing; give one or more names separated by commas.") }
        return names
    }

    static func profile(_ name: String) throws -> DeviceProfile {
        try DeviceProfile.load(path: locate(name, folder: "Profiles", kind: "profile"))
    }

    /// The files a simulation reads (those that exist), which its outputs must not replace.
    static func inputs(profiles: [String], scenarios: [String], options: SimulationOptions) -> [String] {
        var paths = profiles.compactMap { try? locate($0, folder: "Profiles", kind: "profile") }
            + scenarios.compactMap { try? locate($0, folder: "Simulator/Scenarios", kind: "scenario") }
        if options.modelSpec == nil, let model = try? ModelCatalog.resolve(options.model) { paths.append(model) }
        return paths
    }

    static func scenario(_ name: String) throws -> Scenario {
        try Scenario.load(path: locate(name, folder: "Simulator/Scenarios", kind: "scenario"))
    }
}

struct SimRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one scenario on one profile (the default: `ember sim --profile P --scenario S`).")

    @Option(name: .long, help: "A device profile name in Profiles/ or a JSON path.")
    var profile: String = "flagship-android"

    @Option(name: .long, help: "A scenario name in Simulator/Scenarios/ or a JSON path.")
    var scenario: String = "day-in-the-life"

    @Option(name: .long, help: "Scheduling policy: \(PolicyName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var policy: PolicyName = .race

    @Flag(name: .long, help: "Generate the text with the real model (time still comes from the device model).")
    var realTokens = false

    @Flag(name: .long, help: "Count tokens only, for fast sweeps (the default).")
    var costModel = false

    @Flag(name: .long, help: "Print the summary as one JSON object.")
    var json = false

    @Option(name: .long, help: "Write the timeline as CSV to this file.")
    var timeline: String?

    @Option(name: .long, help: "Write the HTML report (SVG plots) to this file.")
    var report: String?

    @Option(name: .long, help: "Seed for sampling in --real-tokens mode.")
    var seed: UInt64 = 42

    @Option(name: .long, help: "Sampling temperature in --real-tokens mode (0 = greedy).")
    var temperature: Float = 0.7

    @Option(name: .long, help: "Host threads that compute real tokens (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Memory budget (default: the profile's app memory limit).")
    var memoryBudget: String?

    @Flag(name: .long, help: "Replace --timeline and --report files that already exist (never a device, a directory or an input).")
    var overwrite = false

    @OptionGroup var options: SimulationOptions

    func validate() throws {
        if let memoryBudget, let problem = ByteCount.problem(parsing: memoryBudget) {
            throw ValidationError("--memory-budget: \(problem).")
        }
        if realTokens && costModel { throw ValidationError("choose one of --real-tokens and --cost-model.") }
        if realTokens && options.modelSpec != nil { throw ValidationError("--model-spec has no weights; --real-tokens needs --model.") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
    }

    /// The memory a named model needs on this phone at a 2,048-token context: resident weights
    /// when they fit the limit, else streamed from the file mapping (about two layers resident, as
    /// `--stream-weights` does); refused in one line when even that does not fit.
    static func fit(_ workload: ModelWorkload, limit: Int, profile: DeviceProfile) throws -> (bytes: Int, streamWeights: Bool) {
        let name = profile.name
        let context = 2048.0
        let keyValue = workload.keyValueBytesPerToken * context
        let scratch = 64.0 * 1_048_576
        let resident = workload.residentWeightBytes + keyValue + scratch
        if resident <= Double(limit) { return (Int(resident), false) }
        let layers = Double(max(1, workload.layerCount ?? 1))
        let streamed = 2 * workload.residentWeightBytes / layers + keyValue + scratch
        // Streamed weights stay in the page cache only while the file fits the phone's spare RAM;
        // beyond that every token would read flash, which this cost model does not price.
        let pageCache = profile.memory.ramGibibytes * 1_073_741_824 * 0.6
        if streamed <= Double(limit) && workload.residentWeightBytes <= pageCache { return (Int(streamed), true) }
        if streamed <= Double(limit) {
            throw LanguageModelError(.memoryBudget, "\(workload.name) has \(ByteCount.format(Int(workload.residentWeightBytes))) of weights: more than \(name)'s "
                + "\(profile.memory.ramGibibytes) GiB of RAM can cache, so streaming would read flash every token; choose a smaller model or quantization")
        }
        throw LanguageModelError(.memoryBudget, "\(workload.name) does not fit \(name)'s memory limit of \(ByteCount.format(limit)): "
            + "\(ByteCount.format(Int(resident))) resident, \(ByteCount.format(Int(streamed))) with streamed weights (context 2048)")
    }

    /// Sequences the engine may decode together: one KV cache (and, with real tokens, the
    /// scratch of one session) more per sequence, as many as the memory left over holds, at most 4.
    static func decodeBatchLimit(budget: Int, planned: Int, perSequence: Int) -> Int {
        max(1, min(4, 1 + (budget - planned) / max(1, perSequence)))
    }

    /// What one more sequence of a `fit` plan costs: its KV cache at context 2048 and its scratch.
    static func sequenceBytes(_ workload: ModelWorkload) -> Int {
        Int(workload.keyValueBytesPerToken * 2048) + 64 * 1_048_576
    }

    func run() throws {
        try OutputFiles([("--timeline", timeline), ("--report", report)], overwrite: overwrite)
            .check(inputs: SimulatorFiles.inputs(profiles: [profile], scenarios: [scenario], options: options))
        // Created now, so a folder that cannot take them fails before a long run, not after it.
        let timelineFile = try timeline.map { try AtomicOutputFile(path: $0) }
        let reportFile = try report.map { try AtomicOutputFile(path: $0) }
        let deviceProfile = try SimulatorFiles.profile(profile)
        let script = try SimulatorFiles.scenario(scenario)
        let workload = try options.workload()
        var runner = SimulationRunner(profile: deviceProfile, scenario: script, workload: workload)
        runner.sampleInterval = options.sampleInterval
        let start = MonotonicClock.nanoseconds()
        var policy = self.policy.make()
        var result: SimulationResult
        // The model must fit the app's memory limit on this phone (or the given budget): plan it first.
        let limit = memoryBudget.flatMap(ByteCount.parse) ?? deviceProfile.appMemoryLimitBytes
        var plan: MemoryPlan?
        var specPlan: (bytes: Int, streamWeights: Bool)?
        if options.modelSpec != nil {
            specPlan = try Self.fit(workload, limit: limit, profile: deviceProfile)
        } else {
            let file = try GGUFFile(path: ModelCatalog.resolve(options.model))
            plan = try MemoryPlan.fit(file: file, budgetBytes: limit, context: 2048, threadCount: threads ?? defaultThreadCount(),
                                      allowStreaming: true, interleave: ModelOptions.interleavesWeights)
        }
        if let plan {
            runner.maximumDecodeBatch = Self.decodeBatchLimit(budget: limit, planned: plan.totalBytes,
                                                              perSequence: plan.keyValueCacheBytes + plan.scratchBytes)
        } else if let specPlan {
            runner.maximumDecodeBatch = Self.decodeBatchLimit(budget: limit, planned: specPlan.bytes,
                                                              perSequence: Self.sequenceBytes(workload))
        }
        if realTokens {
            let model = try LanguageModel(path: ModelCatalog.resolve(options.model),
                                          options: LoadOptions(interleave: ModelOptions.interleavesWeights,
                                                               streamWeights: plan?.streamWeights ?? false))
            let sampling = temperature == 0 ? SamplingParameters.greedy : SamplingParameters(temperature: temperature, seed: seed)
            var engine = LanguageModelEngine(model: model, sampling: sampling, contextLength: plan?.context ?? 2048,
                                             threadCount: threads ?? defaultThreadCount())
            // Real tokens take minutes: a bar follows the simulated clock (by each reply's arrival).
            let bar = ProgressBar("simulating", total: { "\($0) simulated s" })
            let duration = Int(script.durationSeconds.rounded(.up))
            result = try runner.run(policy: &policy, engine: &engine) { request, _ in
                bar.update(min(duration, Int(request.arrival)), duration)
            }
            bar.finish()
            result.mode = "real-tokens"
        } else {
            var engine = CostModelEngine()
            result = try runner.run(policy: &policy, engine: &engine)
        }
        result.wallSeconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
        result.memoryPlanBytes = plan?.totalBytes ?? specPlan?.bytes
        result.memoryLimitBytes = limit
        result.streamWeights = plan?.streamWeights ?? specPlan?.streamWeights ?? false
        if let timelineFile {
            try timelineFile.write(Array(result.recorder.csv().utf8), at: 0)
            try timelineFile.commit()
        }
        if let reportFile {
            try reportFile.write(Array(HTMLReport.render([result], profile: deviceProfile).utf8), at: 0)
            try reportFile.commit()
        }
        if json {
            print(result.summaryJSON)
            return
        }
        if realTokens {
            // One line a reply (the report has them whole).
            for request in result.requests where request.isFinished && request.requestClass == .interactive {
                let words = request.text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
                let line = words.count > 110 ? String(words.prefix(110)) + "…" : words
                print("[\(request.label) at \(String(format: "%.0f", request.arrival)) s] \(line)")
            }
            print()
        }
        let summary = Dictionary(result.summary.map { ($0.0, $0.1.text) }, uniquingKeysWith: { first, _ in first })
        print("\(result.scenario) on \(result.profile) (\(result.policy)): \(summary["requests_completed"] ?? "")/\(summary["requests_total"] ?? "") requests, "
              + "\(summary["tokens_generated"] ?? "") tokens in \(String(format: "%.0f", result.simulatedSeconds / 60)) simulated minutes; "
              + "battery \(summary["battery_start_pct"] ?? "") → \(summary["battery_end_pct"] ?? "") %, peak skin \(summary["peak_skin_c"] ?? "") °C, "
              + "\(summary["seconds_at_or_above_severe"] ?? "") s at or above SEVERE\n")
        print(result.summaryText)
        if let report { print("report: \(report)") }
        if let timeline { print("timeline: \(timeline)") }
    }
}

struct SimSweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run every profile × scenario × policy in cost-model mode on all cores; one JSON line per run.")

    @Option(name: .long, help: "Comma-separated profile names or paths.")
    var profiles: String

    @Option(name: .long, help: "Comma-separated scenario names or paths.")
    var scenarios: String

    @Option(name: .long, help: "Comma-separated policies.")
    var policies: String = "race"

    @Option(name: .long, help: "Write the JSON lines here instead of standard output.")
    var output: String?

    @Flag(name: .long, help: "Replace --output if it already exists (never a device, a directory or an input).")
    var overwrite = false

    @OptionGroup var options: SimulationOptions

    func run() throws {
        let profileNames = try SimulatorFiles.list(profiles, option: "--profiles")
        let scenarioNames = try SimulatorFiles.list(scenarios, option: "--scenarios")
        try OutputFiles([("--output", output)], overwrite: overwrite)
            .check(inputs: SimulatorFiles.inputs(profiles: profileNames, scenarios: scenarioNames, options: options))
        let profileList = try profileNames.map(SimulatorFiles.profile)
        let scenarioList = try scenarioNames.map(SimulatorFiles.scenario)
        let policyList = try parsePolicies(policies)
        let workload = try options.workload()
        let interval = options.sampleInterval
        var combinations: [(DeviceProfile, Scenario, PolicyName)] = []
        for profile in profileList { for scenario in scenarioList { for policy in policyList { combinations.append((profile, scenario, policy)) } } }
        let jobs = combinations
        let lines = LockedArray(count: jobs.count)
        DispatchQueue.concurrentPerform(iterations: jobs.count) { index in
            let (profile, scenario, policyName) = jobs[index]
            do {
                let result = try comparePolicies([policyName], profile: profile, scenario: scenario,
                                                 workload: workload, sampleInterval: interval)[0]
                lines.set(index, result.summaryJSON)
            } catch {
                lines.set(index, "{\"profile\":\(JSONText.string(profile.name)),\"scenario\":\(JSONText.string(scenario.name)),"
                          + "\"error\":\(JSONText.string(String(describing: error)))}")
            }
        }
        let text = lines.values.joined(separator: "\n") + "\n"
        if let output { try write(text, to: output) } else { print(text, terminator: "") }
    }
}

/// Results filled in from several threads.
final class LockedArray: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String]
    init(count: Int) { storage = Array(repeating: "", count: count) }
    func set(_ index: Int, _ value: String) { lock.lock(); storage[index] = value; lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return storage }
}
