import EmberCore
import EmberLM
import Foundation

/// Extracts structured data from notes (JSON valid against a schema) and classifies them (one
/// label of a set), on the device, with the output constrained to the grammar so it always
/// parses: the generation ends as soon as the document is complete, and a document that cannot
/// complete within the token limit is an error, never an invalid result.
///
/// Greedy decoding, one generator (so the cache and the compiled grammars carry over between notes).
/// The prompt suits the model (`ExtractionPrompt.style(for:)`), and a constrained extraction is
/// then kept to what the note supports (`ExtractionGrounding`), written as compact JSON.
public final class NoteExtractor: Sendable {
    public let model: LanguageModel
    public let generator: Generator
    /// Longest output, in tokens.
    public let maxTokens: Int
    /// How the prompts are framed.
    public let prompt: ExtractionPrompt
    /// The check of a constrained extraction against its note; nil keeps the model's document as it is.
    public let grounding: ExtractionGrounding?

    public init(model: LanguageModel, threads: Int, contextLength: Int = 2048, maxTokens: Int = 384,
                promptStyle: ExtractionPrompt.Style? = nil, grounding: ExtractionGrounding? = ExtractionGrounding()) {
        self.model = model
        generator = Generator(model: model, contextLength: min(contextLength, max(16, model.configuration.trainedContextLength)),
                              threadCount: threads)
        self.maxTokens = maxTokens
        prompt = ExtractionPrompt(style: promptStyle ?? ExtractionPrompt.style(for: model))
        self.grounding = grounding
    }

    /// One extraction or classification.
    public struct Result: Sendable, Equatable {
        /// The JSON document (or the label).
        public var text: String
        public var statistics: GenerationStatistics
        public var stopReason: StopReason
        /// The document as the model wrote it, before grounding (equal to `text` when nothing was grounded).
        public var ungroundedText: String
    }

    /// The body the prompt shows, at most this many characters (the context has room for the output).
    public static let maximumNoteCharacters = 4000

    /// Extracts what `schema` (JSON Schema text) describes from the note. `constrained: false`
    /// runs the same prompt without the grammar (the baseline an evaluation compares with; its
    /// free text is returned as it is).
    public func extract(title: String, text: String, schema: String, instruction: String? = nil,
                        constrained: Bool = true) async throws -> Result {
        let what = instruction ?? Self.instruction(for: schema)
        let schemaValue = (try? JSONValue.parse(schema)) ?? .object([])
        let note = Self.clip(text)
        let format = OutputFormat.jsonSchema(schema)
        var result = try await run(prompt.extraction(title: title, note: note, schema: schemaValue, instruction: what),
                                   format: constrained ? format : nil, endsAtFirstObject: !constrained)
        if constrained, let grounding, let document = try? JSONValue.parse(result.text) {
            let grounded = grounding.ground(document, schema: schemaValue, note: title + "\n" + note).compactText
            // The grounded document must still be one of the schema's (it is by construction; checked all the same).
            if let grammar = try? model.constraint(for: format).grammar, grammar.accepts(grounded) { result.text = grounded }
        }
        return result
    }

    /// One of `labels` for the note.
    public func classify(title: String, text: String, labels: [String], constrained: Bool = true) async throws -> Result {
        try await run(prompt.classification(title: title, note: Self.clip(text), labels: labels),
                      format: constrained ? .choices(labels) : nil)
    }

    private func run(_ prompt: Prompt, format: OutputFormat?, endsAtFirstObject: Bool = false) async throws -> Result {
        var request = GenerationRequest(prompt: prompt, maxTokens: maxTokens, sampling: .greedy, outputFormat: format)
        request.reusesCache = true
        // A constrained document's lists end at their first repeated item (see `RepeatedItemWatch`);
        // free text asked for a document ends with its first complete object.
        var watch: RepeatedItemWatch? = if case .jsonSchema? = format { RepeatedItemWatch() } else { nil }
        var text = ""
        var finished: (StopReason, GenerationStatistics)?
        var promptTokens = 0, prefillMilliseconds = 0.0, generated = 0
        var firstToken: UInt64 = 0, lastToken: UInt64 = 0
        let start = MonotonicClock.nanoseconds()
        generation: for try await event in generator.generate(request) {
            switch event {
            case .token(_, let piece):
                text += piece
                generated += 1
                lastToken = MonotonicClock.nanoseconds()
                if generated == 1 { firstToken = lastToken }
                var ending: String?
                if let kept = watch?.append(piece), let format,
                   let completion = try model.constraint(for: format).grammar.shortestCompletion(after: Array(kept.utf8)) {
                    ending = kept + String(decoding: completion, as: UTF8.self)
                } else if endsAtFirstObject, piece.contains("}"), let object = Self.firstJSONObject(text) {
                    ending = object
                }
                if let ending {
                    text = ending
                    // Leaving the loop drops the stream, which ends the generation.
                    let decodeSeconds = Double(lastToken &- firstToken) / 1e9
                    finished = (.stopRule, GenerationStatistics(
                        promptTokens: promptTokens, evaluatedPromptTokens: promptTokens, generatedTokens: generated,
                        timeToFirstTokenMilliseconds: Double(firstToken &- start) / 1e6,
                        prefillTokensPerSecond: prefillMilliseconds > 0 ? Double(promptTokens) / prefillMilliseconds * 1000 : 0,
                        decodeTokensPerSecond: generated > 1 && decodeSeconds > 0 ? Double(generated - 1) / decodeSeconds : 0,
                        peakResidentBytes: ProcessMemory.peakResidentBytes()))
                    break generation
                }
            case .finished(let reason, let statistics): finished = (reason, statistics)
            case .promptProcessed(let tokens, let milliseconds): (promptTokens, prefillMilliseconds) = (tokens, milliseconds)
            }
        }
        guard let (reason, statistics) = finished else { throw EngineError(.cancelled, "the extraction was cancelled") }
        if reason == .cancelled { throw EngineError(.cancelled, "the extraction was cancelled") }
        return Result(text: text, statistics: statistics, stopReason: reason, ungroundedText: text)
    }

    /// The text from the first `{` to its matching `}` (nil while it is open): free text often
    /// wraps a document in prose or a code fence.
    public static func firstJSONObject(_ text: String) -> String? {
        guard let start = text.firstIndex(of: "{") else { return nil }
        var depth = 0, inString = false, escaped = false
        var index = start
        while index < text.endIndex {
            let character = text[index]
            if inString {
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
            } else if character == "\"" {
                inString = true
            } else if character == "{" {
                depth += 1
            } else if character == "}" {
                depth -= 1
                if depth == 0 { return String(text[start...index]) }
            }
            index = text.index(after: index)
        }
        return nil
    }

    /// The schema's own `description` as the instruction, or a generic one.
    static func instruction(for schema: String) -> String {
        if case .string(let description)? = (try? JSONValue.parse(schema))?["description"] {
            return description
        }
        return "Extract the data the schema describes from the note."
    }

    static func clip(_ text: String) -> String {
        text.count <= maximumNoteCharacters ? text : String(text.prefix(maximumNoteCharacters)) + "…"
    }
}
