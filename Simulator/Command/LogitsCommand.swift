import ArgumentParser
import EmberLM
import Foundation

/// `ember logits`: the top-k logits after each input token, evaluated as one batch — or, with
/// `--prefill N`, the first N as one batch and each later one as its own decode step.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Print the top-k logits after each token of --ids: {\"top\":[[[id,logit],…],…]}.",
        discussion: """
            By default every id is evaluated in one batch (batches of up to 512, as a prompt). With \
            --prefill N the first N ids are evaluated that way and each later id as a one-token step, \
            as generation does after its prompt: teacher forcing that follows a reference run which \
            decoded its prompt as a batch and then one token at a time.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Comma-separated token ids, e.g. 1,2,3.")
    var ids: String

    @Option(name: .long, help: "How many of the largest logits to print per position.")
    var top: Int = 5

    @Option(name: .long, help: "Evaluate the first N ids as one batch and each later id as a one-token step (0: every id a step; default: all in one batch).")
    var prefill: Int?

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1.") }
        let tokens = try parseTokenIDs(ids, option: "--ids")
        if let prefill, prefill < 0 || prefill > tokens.count {
            throw ValidationError("--prefill must be between 0 and the \(tokens.count) ids of --ids, not \(prefill).")
        }
    }

    func run() throws {
        let tokens = try parseTokenIDs(ids, option: "--ids")
        let model = try modelOptions.load()
        let session = InferenceSession(model: model.transformer, contextLength: max(tokens.count, 16),
                                       threadCount: modelOptions.threadCount)
        var rows: [String] = []
        let record: (Int, UnsafeBufferPointer<Float>) throws -> Void = { _, logits in
            let best = TopLogits.largest(logits, count: top)
            rows.append("[" + best.map { "[\($0.id),\(String(format: "%.6f", $0.logit))]" }.joined(separator: ",") + "]")
        }
        let batched = prefill ?? tokens.count
        if batched > 0 { try session.evaluate(Array(tokens[..<batched]), logits: .all, record) }
        for token in tokens[batched...] { try session.evaluate([token], logits: .all, record) }
        print("{\"top\":[" + rows.joined(separator: ",") + "]}")
    }
}
