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
        subcommands: [EvalSummarizeCommand.self])
}

/// `ember eval summarize`: every note of a dataset summarized by the model, scored with ROUGE, timed,
/// and — with `--profile` — charged in energy and battery on a simulated phone.
struct EvalSummarizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summarize",
        abstract: "Summarize a dataset's notes and score them (ROUGE-1/2/L F1, latency, simulated energy and battery).")

    @Option(name: .long, help: "A directory of NN-slug.md notes with NN-slug.summary.txt references.")
    var dataset: String = "Tests/Fixtures/notes-dataset"

    @Option(name: .long, help: "A model alias (smollm2, gemma3) or GGUF path.")
    var model: String = "smollm2"

    @Option(name: .long, help: "A device profile: each summary's work is charged on this simulated phone, one after another.")
    var profile: String?

    @Option(name: .long, help: "Worker threads.")
    var threads: Int?

    @Option(name: .long, help: "Summarize only the first N notes.")
    var limit: Int?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() async throws {
        var examples = try SummaryDataset.load(directory: dataset)
        if let limit { examples = Array(examples.prefix(max(1, limit))) }
        let path = try ModelCatalog.resolve(model)
        let languageModel = try LanguageModel(path: path)
        let platform = NominalPlatform()
        let scheduler = TokenScheduler(model: languageModel, policy: RacePolicy(), thermal: platform, power: platform,
                                       threadCount: threads ?? defaultThreadCount())
        let summarizer = NoteSummarizer(model: languageModel, scheduler: scheduler)
        var phone: SimulatedPhone?
        var workload: ModelWorkload?
        var socJoules = 0.0, totalJoules = 0.0
        if let profile {
            let deviceProfile = try SimulatorFiles.profile(profile)
            workload = try ModelWorkload(gguf: GGUFFile(path: path), name: model)
            phone = SimulatedPhone(profile: deviceProfile, ambientCelsius: 25, socCelsius: 30, skinCelsius: 30, batteryPercent: 100)
        }
        var rows: [String] = []
        var sums = (rouge1: 0.0, rouge2: 0.0, rougeL: 0.0, seconds: 0.0, simulated: 0.0)
        // With --json the per-note lines are not printed: a bar shows how far the run is.
        let bar = ProgressBar("summarizing", total: { "\($0) notes" })
        for (index, example) in examples.enumerated() {
            if json { bar.update(index, examples.count) }
            let result = try await summarizer.summarize(title: example.title, text: example.text)
            let scores = ROUGE.scores(candidate: result.summary, reference: example.reference)
            var simulatedSeconds = 0.0
            if var device = phone, let workload {
                var soc = 0.0, total = 0.0
                device.observer = { soc += $0.socWatts * ($0.end - $0.start); total += $0.totalWatts * ($0.end - $0.start) }
                let threads = device.profile.cpu.defaultThreads
                simulatedSeconds += device.perform(workload.prefillCost(tokens: result.promptTokens, position: 0), threads: threads).seconds
                for token in 0..<result.generatedTokens {
                    simulatedSeconds += device.perform(workload.decodeCost(position: result.promptTokens + token), threads: threads).seconds
                }
                device.observer = nil
                socJoules += soc
                totalJoules += total
                phone = device
            }
            sums.rouge1 += scores.rouge1.f1
            sums.rouge2 += scores.rouge2.f1
            sums.rougeL += scores.rougeL.f1
            sums.seconds += result.seconds
            sums.simulated += simulatedSeconds
            rows.append("{\"name\":\(JSONText.string(example.name)),\"parts\":\(result.parts),\"prompt_tokens\":\(result.promptTokens),"
                        + "\"generated_tokens\":\(result.generatedTokens),\"rouge1\":\(JSONText.number(scores.rouge1.f1)),"
                        + "\"rouge2\":\(JSONText.number(scores.rouge2.f1)),\"rougeL\":\(JSONText.number(scores.rougeL.f1)),"
                        + "\"latency_s\":\(JSONText.number(result.seconds)),\"summary\":\(JSONText.string(result.summary))}")
            if !json {
                printError(String(format: "[%d/%d] %@: R1 %.3f R2 %.3f RL %.3f, %.1f s", index + 1, examples.count, example.name,
                                  scores.rouge1.f1, scores.rouge2.f1, scores.rougeL.f1, result.seconds))
            }
        }
        bar.finish()
        let count = Double(examples.count)
        let batteryUsed = phone.map { 100 - $0.batteryPercent } ?? 0
        if json {
            var fields = [
                "\"model\":\(JSONText.string(model))", "\"examples\":\(examples.count)",
                "\"rouge1\":\(JSONText.number(sums.rouge1 / count))", "\"rouge2\":\(JSONText.number(sums.rouge2 / count))",
                "\"rougeL\":\(JSONText.number(sums.rougeL / count))", "\"latency_s_mean\":\(JSONText.number(sums.seconds / count))",
            ]
            if let profile {
                fields += ["\"profile\":\(JSONText.string(profile))",
                           "\"simulated_s_per_summary\":\(JSONText.number(sums.simulated / count))",
                           "\"energy_j_per_summary\":\(JSONText.number(totalJoules / count))",
                           "\"soc_energy_j_per_summary\":\(JSONText.number(socJoules / count))",
                           "\"battery_pct_per_summary\":\(JSONText.number(batteryUsed / count))",
                           "\"battery_pct_total\":\(JSONText.number(batteryUsed))"]
            }
            print("{" + fields.joined(separator: ",") + ",\"summaries\":[" + rows.joined(separator: ",") + "]}")
        } else {
            print(String(format: "%@ on %d notes: ROUGE-1 %.3f, ROUGE-2 %.3f, ROUGE-L %.3f (F1, mean); %.2f s per summary on this machine",
                         model, examples.count, sums.rouge1 / count, sums.rouge2 / count, sums.rougeL / count, sums.seconds / count))
            if let profile {
                print(String(format: "on %@: %.2f s, %.2f J (%.2f J SoC) and %.4f %% battery per summary; %.3f %% battery for all %d",
                             profile, sums.simulated / count, totalJoules / count, socJoules / count, batteryUsed / count,
                             batteryUsed, examples.count))
            }
        }
    }
}
