import ArgumentParser
import EmberCore
import EmberLM
import Foundation

/// `ember perplexity`: llama-perplexity's measurement of a text file.
struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Measure a model's perplexity on a text file the way llama-perplexity does.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "The text file to score.")
    var file: String

    @Option(name: .long, help: "Tokens per chunk; the second half of each chunk is scored.")
    var context: Int = 512

    @Flag(name: .long, help: "Print {\"ppl\":…,\"chunks\":…} as JSON.")
    var json = false

    func validate() throws {
        guard (8...MemoryPlan.maximumContext).contains(context) else {
            throw ValidationError("--context must be between 8 and \(MemoryPlan.maximumContext) tokens, not \(context).")
        }
    }

    func run() throws {
        let data = try BoundedRead.file(atPath: file, limit: 64 << 20)
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ValidationError("'\(file)' is not UTF-8 text.")
        }
        let (model, plan) = try modelOptions.loadWithinBudget(context: context, batchSize: context, contextAdjustable: false)
        let result = try Perplexity.measure(model: model, text: text, contextLength: context,
                                            threadCount: modelOptions.threadCount, batchSize: plan.batchSize,
                                            keyValueType: plan.keyValueType) { chunk, chunks, running in
            if !json { printError(String(format: "[%d/%d] running perplexity %.4f", chunk, chunks, running)) }
        }
        if json {
            print(String(format: "{\"ppl\":%.4f,\"ppl_standard_error\":%.4f,\"chunks\":%d,\"context\":%d,\"scored_tokens\":%d,\"tok_s\":%.1f}",
                         result.perplexity, result.standardError, result.chunks, result.contextLength,
                         result.scoredTokens, result.tokensPerSecond))
        } else {
            print(String(format: "perplexity %.4f ± %.4f over %d chunks of %d tokens (%.1f tokens/s)",
                         result.perplexity, result.standardError, result.chunks, result.contextLength, result.tokensPerSecond))
        }
    }
}
