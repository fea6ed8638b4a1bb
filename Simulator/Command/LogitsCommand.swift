import ArgumentParser
import EmberLM
import Foundation

/// `ember logits`: the top-k logits after each input token, evaluated as one batch.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Print the top-k logits after each token of --ids: {\"top\":[[[id,logit],…],…]}.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Comma-separated token ids, e.g. 1,2,3.")
    var ids: String

    @Option(name: .long, help: "How many of the largest logits to print per position.")
    var top: Int = 5

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1.") }
        _ = try parseTokenIDs(ids, option: "--ids")
    }

    func run() throws {
        let tokens = try parseTokenIDs(ids, option: "--ids")
        let model = try modelOptions.load()
        let session = InferenceSession(model: model.transformer, contextLength: max(tokens.count, 16),
                                       threadCount: modelOptions.threadCount)
        var rows: [String] = []
        try session.evaluate(tokens, logits: .all) { _, logits in
            let best = TopLogits.largest(logits, count: top)
            rows.append("[" + best.map { "[\($0.id),\(String(format: "%.6f", $0.logit))]" }.joined(separator: ",") + "]")
        }
        print("{\"top\":[" + rows.joined(separator: ",") + "]}")
    }
}
