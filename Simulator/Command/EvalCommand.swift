import ArgumentParser
import Ember
import EmberModelCatalog
import EmberCore
import EmberDevice
import EmberEvaluation
import EmberGGUF
import EmberLM
import EmberScheduler
import EmberSimulation
import Foundation

/// `ember eval`: quality measurements against references.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure output quality against human references.",
        subcommands: [EvalSummarizeCommand.self, EvalExtractCommand.self])
}

/// `ember eval summarize`: every note of a dataset's split summarized by each method — Ember's
/// pipeline (abstractive, with its extractive fallback), the extract alone, and the first 40 words
/// — scored with ROUGE, checked for faithfulness, loops and echo, timed, and with `--profile`
/// charged in energy and battery on a simulated phone.
struct EvalSummarizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summarize",
        abstract: "Summarize a dataset's notes by each method and score them (ROUGE-1/2/L, faithfulness, loops, echo, length, latency, energy, battery).",
        discussion: """
            Methods: abstractive (Ember's pipeline: extract, rewrite with the model, check; the extract when the \
            rewrite fails), extractive (the extract alone, no model) and lead-40 (the note's first 40 words). \
            Notes the prompts draw few-shot examples from are never scored. The summaries run as background \
            work under the adaptive policy in the phone state given by --thermal, --battery, --charging and \
            --low-power (by default cool and on the charger).
            """)

    @Option(name: .long, help: "A directory of NN-slug.md notes with NN-slug.summary.txt references (and split.txt).")
    var dataset: String = "Tests/Fixtures/notes-dataset"

    @Option(name: .long, help: "A model alias (smollm2, gemma3) or GGUF path.")
    var model: String = "smollm2"

    @Option(name: .long, help: "Which notes: heldout (reported), tune (tuned on) or all.")
    var split: SplitArgument = .heldout

    @Option(name: .long, parsing: .upToNextOption, help: "Methods to run: abstractive, extractive, lead-40 (all by default).")
    var methods: [EvaluatedMethod] = EvaluatedMethod.allCases

    @Option(name: .long, help: "A device profile: each summary's model work is charged on this simulated phone, one after another.")
    var profile: String?

    @Option(name: .long, help: "Worker threads.")
    var threads: Int?

    @Option(name: .long, help: "Summarize only the first N notes.")
    var limit: Int?

    @OptionGroup var platform: SummaryPlatformOptions

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit)") }
        if methods.isEmpty { throw ValidationError("--methods needs at least one of abstractive, extractive, lead-40") }
    }

    func run() async throws {
        let fewShotSources = Set(FewShotExample.builtIn.map(\.sourceName))
        var examples = try SummaryDataset.load(directory: dataset).filter {
            split == .all || $0.split.rawValue == split.rawValue
        }.filter { !fewShotSources.contains($0.name) }
        guard !examples.isEmpty else { throw EvaluationError(.datasetNotFound, "\(dataset) has no \(split.rawValue) notes to score") }
        if let limit { examples = Array(examples.prefix(limit)) }
        let runsModel = methods.contains(.abstractive)
        var summarizer: NoteSummarizer?
        var workload: ModelWorkload?
        var phone: SimulatedPhone?
        if runsModel {
            let path = try ModelCatalog.resolve(model)
            let languageModel = try LanguageModel(path: path)
            if let note = platform.deferralNote, !json { printError(note) }
            summarizer = NoteSummarizer(model: languageModel, scheduler: platform.scheduler(model: languageModel, threads: threads ?? defaultThreadCount()))
            if let profile {
                workload = try ModelWorkload(gguf: GGUFFile(path: path), name: model)
                phone = SimulatedPhone(profile: try SimulatorFiles.profile(profile), ambientCelsius: 25, socCelsius: 30,
                                       skinCelsius: 30, batteryPercent: 100)
            }
        }
        let scaffolding: [String]
        let labels: [String]
        if let summarizer {
            let prompt = SummaryPrompt.make(style: summarizer.promptStyle, title: "", keyPoints: [], examples: summarizer.examples, maximumWords: 0)
            (scaffolding, labels) = (prompt.scaffolding, prompt.labels)
        } else {
            let prompt = SummaryPrompt.make(style: .chat, title: "", keyPoints: [], examples: [], maximumWords: 0)
            (scaffolding, labels) = (prompt.scaffolding, prompt.labels)
        }
        let faithfulness = FaithfulnessCheck()
        func measure(_ summary: String, _ example: SummaryExample, seconds: Double, fellBack: Bool = false) -> SummaryMeasurement {
            SummaryMeasurement(rouge: ROUGE.scores(candidate: summary, reference: example.reference),
                               faithfulness: faithfulness.report(summary: summary, source: example.title + "\n" + example.text).score,
                               loops: RepetitionCheck.isLooping(summary),
                               echoes: EchoCheck.echoes(summary, scaffolding: scaffolding, labels: labels),
                               fellBack: fellBack, words: summary.split(whereSeparator: \.isWhitespace).count, seconds: seconds)
        }
        var scores = Dictionary(uniqueKeysWithValues: methods.map { ($0, SummaryScores()) })
        var modelOutput = (loops: 0, echoes: 0, unfaithful: 0, count: 0)
        var rows: [String] = []
        let bar = ProgressBar("summarizing", total: { "\($0) notes" })
        for (index, example) in examples.enumerated() {
            if json { bar.update(index, examples.count) }
            var fields = ["\"name\":\(JSONText.string(example.name))", "\"split\":\(JSONText.string(example.split.rawValue))"]
            var line: [String] = []
            for method in methods {
                var measurement: SummaryMeasurement
                var summary: String
                switch method {
                case .lead:
                    let start = MonotonicClock.nanoseconds()
                    summary = LeadBaseline.summary(example.text, words: 40)
                    measurement = measure(summary, example, seconds: Double(MonotonicClock.nanoseconds() - start) / 1e9)
                case .extractive:
                    let result = NoteSummarizer.extractiveResult(title: example.title, text: example.text)
                    summary = result.summary
                    measurement = measure(summary, example, seconds: result.seconds)
                case .abstractive:
                    guard let summarizer else { continue }
                    let result = try await summarizer.summarize(title: example.title, text: example.text, deadlineSeconds: platform.deadline)
                    summary = result.summary
                    measurement = measure(summary, example, seconds: result.seconds, fellBack: result.method == .extractiveFallback)
                    if let checks = result.checks {
                        modelOutput.count += 1
                        modelOutput.loops += checks.loops ? 1 : 0
                        modelOutput.echoes += checks.echoes ? 1 : 0
                        modelOutput.unfaithful += checks.isFaithful ? 0 : 1
                    }
                    if var device = phone, let workload {
                        var joules = 0.0
                        device.observer = { joules += $0.totalWatts * ($0.end - $0.start) }
                        let before = device.batteryPercent
                        let threads = device.profile.cpu.defaultThreads
                        var simulated = device.perform(workload.prefillCost(tokens: result.promptTokens, position: 0), threads: threads).seconds
                        for token in 0..<result.generatedTokens {
                            simulated += device.perform(workload.decodeCost(position: result.promptTokens + token), threads: threads).seconds
                        }
                        device.observer = nil
                        measurement.simulatedSeconds = simulated
                        measurement.joules = joules
                        measurement.batteryPercent = before - device.batteryPercent
                        phone = device
                    }
                    fields += ["\"method\":\(JSONText.string(result.method.rawValue))",
                               "\"fallback_reason\":\(result.fallbackReason.map(JSONText.string) ?? "null")",
                               "\"model_output\":\(result.modelOutput.map(JSONText.string) ?? "null")",
                               "\"stop\":\(result.stop.map(JSONText.string) ?? "null")",
                               "\"prompt_tokens\":\(result.promptTokens)", "\"generated_tokens\":\(result.generatedTokens)"]
                }
                scores[method]?.add(measurement)
                fields.append("\(JSONText.string(method.rawValue)):{\"summary\":\(JSONText.string(summary)),"
                              + "\"rouge1\":\(JSONText.number(measurement.rouge.rouge1.f1)),\"rouge2\":\(JSONText.number(measurement.rouge.rouge2.f1)),"
                              + "\"rougeL\":\(JSONText.number(measurement.rouge.rougeL.f1)),\"faithfulness\":\(JSONText.number(measurement.faithfulness)),"
                              + "\"loop\":\(measurement.loops),\"echo\":\(measurement.echoes),\"words\":\(measurement.words),"
                              + "\"latency_s\":\(JSONText.number(measurement.seconds))}")
                line.append(String(format: "%@ RL %.3f", method.rawValue, measurement.rouge.rougeL.f1))
            }
            rows.append("{" + fields.joined(separator: ",") + "}")
            if !json { printError("[\(index + 1)/\(examples.count)] \(example.name): " + line.joined(separator: ", ")) }
        }
        bar.finish()
        let ordered = methods.compactMap { method in scores[method].map { (method, $0) } }
        if json {
            var top = ["\"model\":\(JSONText.string(model))", "\"split\":\(JSONText.string(split.rawValue))", "\"examples\":\(examples.count)",
                       "\"platform\":\(platformJSON)"]
            if let profile { top.append("\"profile\":\(JSONText.string(profile))") }
            // The pipeline's figures at the top level, as before the methods existed.
            if let pipeline = scores[.abstractive] ?? ordered.first?.1 {
                top += ["\"rouge1\":\(JSONText.number(pipeline.rouge1))", "\"rouge2\":\(JSONText.number(pipeline.rouge2))",
                        "\"rougeL\":\(JSONText.number(pipeline.rougeL))", "\"latency_s_mean\":\(JSONText.number(pipeline.meanSeconds))",
                        "\"energy_j_per_summary\":\(JSONText.number(pipeline.meanJoules))",
                        "\"battery_pct_per_summary\":\(JSONText.number(pipeline.meanBatteryPercent))"]
            }
            if modelOutput.count > 0 {
                let count = Double(modelOutput.count)
                top.append("\"model_output\":{\"loop_rate\":\(JSONText.number(Double(modelOutput.loops) / count)),"
                           + "\"echo_rate\":\(JSONText.number(Double(modelOutput.echoes) / count)),"
                           + "\"unfaithful_rate\":\(JSONText.number(Double(modelOutput.unfaithful) / count))}")
            }
            top.append("\"methods\":[" + ordered.map { Self.json($0.0, $0.1) }.joined(separator: ",") + "]")
            print("{" + top.joined(separator: ",") + ",\"summaries\":[" + rows.joined(separator: ",") + "]}")
            return
        }
        print("\(model) on \(examples.count) \(split.rawValue) notes of \(dataset)\(profile.map { ", energy on \($0)" } ?? ""):")
        print("| method | ROUGE-1 | ROUGE-2 | ROUGE-L | faithfulness (min) | loop | echo | fallback | words | latency s | simulated s | J | battery % |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for (method, row) in ordered {
            print(String(format: "| %@ | %.3f | %.3f | %.3f | %.3f (%.2f) | %.2f | %.2f | %.2f | %.1f | %.3f | %.2f | %.2f | %.4f |",
                         method.rawValue, row.rouge1, row.rouge2, row.rougeL, row.faithfulness, row.minimumFaithfulness, row.loopRate,
                         row.echoRate, row.fallbackRate, row.meanWords, row.meanSeconds, row.meanSimulatedSeconds, row.meanJoules,
                         row.meanBatteryPercent))
        }
        if modelOutput.count > 0 {
            let count = Double(modelOutput.count)
            print(String(format: "the model's rewrites before the checks: %.2f loop, %.2f echo, %.2f unfaithful (each replaced by the extract)",
                         Double(modelOutput.loops) / count, Double(modelOutput.echoes) / count, Double(modelOutput.unfaithful) / count))
        }
    }

    private var platformJSON: String {
        let state = platform.state
        return "{\"thermal\":\(JSONText.string(state.thermalStatus.name)),\"battery_pct\":\(JSONText.number(state.batteryPercent ?? 100)),"
            + "\"charging\":\(state.isCharging),\"low_power\":\(state.isLowPowerMode),\"policy\":\"adaptive\"}"
    }

    private static func json(_ method: EvaluatedMethod, _ row: SummaryScores) -> String {
        "{\"method\":\(JSONText.string(method.rawValue)),\"rouge1\":\(JSONText.number(row.rouge1)),\"rouge2\":\(JSONText.number(row.rouge2)),"
            + "\"rougeL\":\(JSONText.number(row.rougeL)),\"faithfulness\":\(JSONText.number(row.faithfulness)),"
            + "\"faithfulness_min\":\(JSONText.number(row.minimumFaithfulness)),\"loop_rate\":\(JSONText.number(row.loopRate)),"
            + "\"echo_rate\":\(JSONText.number(row.echoRate)),\"fallback_rate\":\(JSONText.number(row.fallbackRate)),"
            + "\"mean_words\":\(JSONText.number(row.meanWords)),\"latency_s_mean\":\(JSONText.number(row.meanSeconds)),"
            + "\"simulated_s_per_summary\":\(JSONText.number(row.meanSimulatedSeconds)),"
            + "\"energy_j_per_summary\":\(JSONText.number(row.meanJoules)),\"battery_pct_per_summary\":\(JSONText.number(row.meanBatteryPercent))}"
    }
}

/// `--split` of `eval summarize`.
enum SplitArgument: String, CaseIterable, ExpressibleByArgument {
    case heldout, tune, all
}

/// A method `eval summarize` scores.
enum EvaluatedMethod: String, CaseIterable, ExpressibleByArgument {
    case abstractive
    case extractive
    case lead = "lead-40"
}
