import ArgumentParser
import EmberCore
import EmberLM
import Foundation

/// `ember generate`: stream a model's continuation of a prompt or a chat turn.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt, streaming it as it is produced.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "The prompt text (special-token text such as <|im_start|> is matched).")
    var prompt: String?

    @Option(name: .long, help: "The prompt as comma-separated token ids.")
    var promptIds: String?

    @Flag(name: .long, help: "Wrap the prompt as a user turn in the model's chat template.")
    var chat = false

    @Option(name: .long, help: "A system prompt for --chat.")
    var system: String?

    @Option(name: .long, help: "Stop after this many generated tokens.")
    var maxTokens: Int = 128

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0.8

    @Option(name: .long, help: "Keep the K most likely tokens (0 = all).")
    var topK: Int = 40

    @Option(name: .long, help: "Nucleus sampling threshold (1 = off).")
    var topP: Float = 0.95

    @Option(name: .long, help: "Drop tokens below P × the top probability (0 = off).")
    var minP: Float = 0.05

    @Option(name: .long, help: "Penalty for repeating recent tokens (1 = off).")
    var repeatPenalty: Float = 1.0

    @Option(name: .long, help: "Frequency penalty (0 = off).")
    var frequencyPenalty: Float = 0

    @Option(name: .long, help: "Presence penalty (0 = off).")
    var presencePenalty: Float = 0

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Context length in tokens.")
    var context: Int = 2048

    @Option(name: .long, help: "When the context fills, keep the first N tokens, drop the oldest half of the rest and continue.")
    var contextShift: Int?

    @Flag(name: .long, help: "Keep generating through end-of-generation tokens.")
    var ignoreEos = false

    @Flag(name: .long, help: "Print one JSON object with ids, text and stats instead of streaming text.")
    var json = false

    @OptionGroup var output: OutputFormatOptions

    func validate() throws {
        if (prompt == nil) == (promptIds == nil) {
            throw ValidationError("give exactly one of --prompt TEXT or --prompt-ids 1,2,3.")
        }
        if chat, promptIds != nil { throw ValidationError("--chat needs --prompt text, not --prompt-ids.") }
        if let promptIds { _ = try parseTokenIDs(promptIds, option: "--prompt-ids") }
        if let prompt, !argumentIsValidUTF8(prompt, option: "--prompt") {
            throw ValidationError("--prompt is not valid UTF-8 text.")
        }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must not be negative.") }
        guard (16...MemoryPlan.maximumContext).contains(context) else {
            throw ValidationError("--context must be between 16 and \(MemoryPlan.maximumContext) tokens, not \(context).")
        }
        guard temperature.isFinite, temperature >= 0 else {
            throw ValidationError("--temperature must be a finite number of at least 0 (0 is greedy), not \(temperature).")
        }
        guard topK >= 0 else { throw ValidationError("--top-k must be at least 0 (0 keeps every token), not \(topK).") }
        guard (0...1).contains(topP), (0...1).contains(minP) else {
            throw ValidationError("--top-p and --min-p must be between 0 and 1, not \(topP) and \(minP).")
        }
        let repeatRange = SamplingParameters.repetitionPenaltyRange
        guard repeatRange.contains(repeatPenalty) else {
            throw ValidationError("--repeat-penalty must be between \(repeatRange.lowerBound) and \(repeatRange.upperBound) (1 is off), not \(repeatPenalty).")
        }
        let additiveRange = SamplingParameters.additivePenaltyRange
        for (option, value) in [("--frequency-penalty", frequencyPenalty), ("--presence-penalty", presencePenalty)]
        where !additiveRange.contains(value) {
            throw ValidationError("\(option) must be between \(additiveRange.lowerBound) and \(additiveRange.upperBound) (0 is off), not \(value).")
        }
        if let contextShift, contextShift < 0 {
            throw ValidationError("--context-shift must be at least 0 tokens, not \(contextShift).")
        }
    }

    func run() async throws {
        let (model, plan) = try modelOptions.loadWithinBudget(context: context, contextAdjustable: true)
        let request = GenerationRequest(
            prompt: try makePrompt(),
            maxTokens: maxTokens,
            sampling: SamplingParameters(
                temperature: temperature, topK: topK, topP: topP, minP: minP,
                repetitionPenalty: repeatPenalty, frequencyPenalty: frequencyPenalty,
                presencePenalty: presencePenalty, seed: seed),
            ignoreEndOfGeneration: ignoreEos, contextShiftKeep: contextShift, outputFormat: try output.format())
        let generator = Generator(model: model, contextLength: min(plan.context, max(model.configuration.trainedContextLength, 16)),
                                  threadCount: modelOptions.threadCount, batchSize: plan.batchSize, keyValueType: plan.keyValueType)
        var ids: [Int32] = []
        var text = ""
        var statistics: GenerationStatistics?
        var reason = StopReason.maxTokens
        for try await event in generator.generate(request) {
            switch event {
            case .promptProcessed:
                break
            case .token(let id, let piece):
                if id >= 0 { ids.append(id) }
                text += piece
                if !json {
                    FileHandle.standardOutput.write(Data(piece.utf8))
                }
            case .finished(let stopReason, let stats):
                statistics = stats
                reason = stopReason
            }
        }
        guard let statistics else { return }
        // The grammar's costs (its constraint is the model's cached one, so the counters are this run's).
        let grammar = try request.outputFormat.map { format -> (compile: Double, mask: Double, states: Int) in
            let constraint = try model.constraint(for: format)
            let counters = constraint.maskStatistics
            return (constraint.grammar.compileMilliseconds, counters.microsecondsPerStep, counters.states)
        }
        let trained = max(model.configuration.trainedContextLength, 16)
        if context > trained { printError(contextNote(context, trained: trained)) }
        if json {
            let stats = ([
                "\"prompt_tokens\":\(statistics.promptTokens)",
                "\"generated_tokens\":\(statistics.generatedTokens)",
                "\"ttft_ms\":\(JSONText.number(statistics.timeToFirstTokenMilliseconds))",
                "\"prefill_tok_s\":\(JSONText.number(statistics.prefillTokensPerSecond))",
                "\"decode_tok_s\":\(JSONText.number(statistics.decodeTokensPerSecond))",
                "\"peak_rss_bytes\":\(statistics.peakResidentBytes)",
                "\"planned_bytes\":\(plan.totalBytes)",
                "\"context\":\(plan.context)",
                "\"kv_type\":\"\(plan.keyValueType.rawValue)\"",
                "\"stop_reason\":\(JSONText.string(reason.rawValue))",
            ] + (grammar.map { [
                "\"grammar_compile_ms\":\(JSONText.number($0.compile))",
                "\"mask_us_per_token\":\(JSONText.number($0.mask))",
                "\"grammar_states\":\($0.states)",
            ] } ?? [])).joined(separator: ",")
            print("{\"ids\":\(JSONText.ids(ids)),\"text\":\(JSONText.string(text)),\"stats\":{\(stats)}}")
        } else {
            // Through the same unbuffered handle as the streamed text, so the line ends before the stats.
            FileHandle.standardOutput.write(Data("\n".utf8))
            printError(String(format: "[%d prompt tokens, %d generated; first token %.0f ms; prefill %.1f tok/s; decode %.1f tok/s; peak RSS %@; stop: %@]",
                              statistics.promptTokens, statistics.generatedTokens, statistics.timeToFirstTokenMilliseconds,
                              statistics.prefillTokensPerSecond, statistics.decodeTokensPerSecond,
                              ByteCount.format(statistics.peakResidentBytes), reason.rawValue))
            if let grammar {
                printError(String(format: "[grammar: compiled in %.2f ms; mask %.1f µs per token; %d states]",
                                  grammar.compile, grammar.mask, grammar.states))
            }
        }
    }

    private func makePrompt() throws -> Prompt {
        if let promptIds { return .ids(try parseTokenIDs(promptIds, option: "--prompt-ids")) }
        let text = prompt ?? ""
        if chat {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: .system, content: system)) }
            messages.append(ChatMessage(role: .user, content: text))
            return .chat(messages)
        }
        return .text(text)
    }
}
