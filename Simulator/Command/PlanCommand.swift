import ArgumentParser
import Ember
import EmberModelCatalog
import EmberCore
import EmberGGUF
import EmberLM

/// `ember plan`: the memory a model will need, worked out before loading it.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Account for every byte a model needs (weights, KV cache, scratch, overhead) and fit it to a budget.")

    @Option(name: .long, help: "A model alias (smollm2, gemma3) or the path of a GGUF file.")
    var model: String = "smollm2"

    @Option(name: .long, help: "Memory budget (e.g. 160MiB, 1.5GiB).")
    var memoryBudget: String?

    @Option(name: .long, help: "Context length in tokens.")
    var context: Int = 2048

    @Option(name: .long, help: "Threads (scratch grows with them).")
    var threads: Int?

    @Flag(name: .long, help: "Plan with weights streamed layer by layer.")
    var streamWeights = false

    @Option(name: .long, help: "KV cache type: f16, q8_0 or q4_0 (default: f16, or what fits the budget).")
    var kvType: KeyValueType?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard (16...MemoryPlan.maximumContext).contains(context) else {
            throw ValidationError("--context must be between 16 and \(MemoryPlan.maximumContext) tokens, not \(context).")
        }
        if let threads, threads < 1 || threads > 256 {
            throw ValidationError("--threads must be between 1 and 256, not \(threads).")
        }
        if let memoryBudget, let problem = ByteCount.problem(parsing: memoryBudget) {
            throw ValidationError("--memory-budget: \(problem).")
        }
    }

    func run() throws {
        let path = try ModelCatalog.resolve(model)
        let file = try GGUFFile(path: path)
        let threadCount = threads ?? defaultThreadCount()
        let context = try boundedContext(self.context, file: file, adjustable: true)
        var plan: MemoryPlan
        var refusal: String?
        if let budget = memoryBudget.flatMap(ByteCount.parse) {
            do {
                // The library's planner, as `Engine.plan` and `--memory-budget` use it.
                var configuration = EngineConfiguration(model: .gguf(path: path), memoryBudgetBytes: budget, contextLength: context,
                                                        threadCount: threadCount, keyValueType: kvType,
                                                        weightStreaming: streamWeights ? .always : .allowed)
                configuration.interleavesWeights = ModelOptions.interleavesWeights
                plan = try ModelLoader.plan(OpenedModel(file: file, name: path, isContainer: false), configuration)
            } catch {
                refusal = "\(error)"
                plan = try MemoryPlan.make(file: file, context: context, threadCount: threadCount, streamWeights: streamWeights,
                                           interleave: ModelOptions.interleavesWeights, keyValueType: kvType ?? .f16, budgetBytes: budget)
            }
        } else {
            plan = try MemoryPlan.make(file: file, context: context, threadCount: threadCount, streamWeights: streamWeights,
                                       interleave: ModelOptions.interleavesWeights, keyValueType: kvType ?? .f16)
        }
        if json {
            print("{\"weights_bytes\":\(plan.weightsBytes),\"kv_cache_bytes\":\(plan.keyValueCacheBytes),"
                  + "\"scratch_bytes\":\(plan.scratchBytes),\"overhead_bytes\":\(plan.overheadBytes),"
                  + "\"total_bytes\":\(plan.totalBytes),\"budget_bytes\":\(plan.budgetBytes.map(String.init) ?? "null"),"
                  + "\"fits\":\(refusal == nil && plan.fits),\"context\":\(plan.context),\"kv_type\":\(JSONText.string(plan.keyValueType.rawValue)),"
                  + "\"stream_weights\":\(plan.streamWeights),\"batch_size\":\(plan.batchSize)"
                  + (refusal.map { ",\"reason\":\(JSONText.string($0))" } ?? "") + "}")
        } else {
            func line(_ label: String, _ bytes: Int) { print(label.padding(toLength: 30, withPad: " ", startingAt: 0) + ByteCount.format(bytes)) }
            line("weights", plan.weightsBytes)
            line("KV cache (\(plan.keyValueType.rawValue), \(plan.context))", plan.keyValueCacheBytes)
            line("scratch (\(plan.batchSize)-token steps)", plan.scratchBytes)
            line("runtime and tokenizer", plan.overheadBytes)
            line("total", plan.totalBytes)
            if let budget = plan.budgetBytes { line("budget", budget) }
            print("weights: " + (plan.streamWeights ? "streamed layer by layer from the file" : "resident"))
            print(refusal.map { "does not fit: \($0)" } ?? (plan.fits ? "fits" : "does not fit"))
        }
        if refusal != nil { throw ExitCode(3) }
    }
}
