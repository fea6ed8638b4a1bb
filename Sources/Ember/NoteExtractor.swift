import EmberCore
import EmberLM
import Foundation

/// Extracts structured data from notes (JSON valid against a schema) and classifies them (one
/// label of a set), on the device, with the output constrained to the grammar so it always
/// parses: the generation ends as soon as the document is complete, and a document that cannot
/// complete within the token limit is an error, never an invalid result.
///
/// Greedy decoding, one generator (so the cache and the compiled grammars carry over between notes).
public final class NoteExtractor: Sendable {
    public let model: LanguageModel
    public let generator: Generator
    /// Longest output, in tokens.
    public let maxTokens: Int

    public init(model: LanguageModel, threads: Int, contextLength: Int = 2048, maxTokens: Int = 384) {
        self.model = model
        generator = Generator(model: model, contextLength: min(contextLength, max(16, model.configuration.trainedContextLength)),
                              threadCount: threads)
        self.maxTokens = maxTokens
    }

    /// One extraction or classification.
    public struct Result: Sendable, Equatable {
        /// The JSON document (or the label).
        public var text: String
        public var statistics: GenerationStatistics
        public var stopReason: StopReason
    }

    /// The body the prompt shows, at most this many characters (the context has room for the output).
    public static let maximumNoteCharacters = 4000

    /// Extracts what `schema` (JSON Schema text) describes from the note. `constrained: false`
    /// runs the same prompt without the grammar (the baseline an evaluation compares with).
    public func extract(title: String, text: String, schema: String, instruction: String? = nil,
                        constrained: Bool = true) async throws -> Result {
        let what = instruction ?? Self.instruction(for: schema)
        let prompt = makePrompt(system: "You extract structured data from notes. Reply with one JSON document only, no prose.",
                                user: "\(what)\nJSON Schema: \(Self.compact(schema))\n\nNote title: \(title)\nNote:\n\(Self.clip(text))",
                                lead: "JSON:")
        return try await run(prompt, format: constrained ? .jsonSchema(schema) : nil)
    }

    /// One of `labels` for the note.
    public func classify(title: String, text: String, labels: [String], constrained: Bool = true) async throws -> Result {
        let prompt = makePrompt(system: "You classify notes. Reply with one label only.",
                                user: "Which one of these labels fits the note best: \(labels.joined(separator: ", "))?\n\nNote title: \(title)\nNote:\n\(Self.clip(text))",
                                lead: "Label:")
        return try await run(prompt, format: constrained ? .choices(labels) : nil)
    }

    private func run(_ prompt: Prompt, format: OutputFormat?) async throws -> Result {
        var request = GenerationRequest(prompt: prompt, maxTokens: maxTokens, sampling: .greedy, outputFormat: format)
        request.reusesCache = true
        var text = ""
        var finished: (StopReason, GenerationStatistics)?
        for try await event in generator.generate(request) {
            switch event {
            case .token(_, let piece): text += piece
            case .finished(let reason, let statistics): finished = (reason, statistics)
            case .promptProcessed: break
            }
        }
        guard let (reason, statistics) = finished else { throw EngineError(.cancelled, "the extraction was cancelled") }
        if reason == .cancelled { throw EngineError(.cancelled, "the extraction was cancelled") }
        return Result(text: text, statistics: statistics, stopReason: reason)
    }

    /// A chat turn for an instruction-tuned model; a plain prompt ending in `lead` for a pretrained one.
    private func makePrompt(system: String, user: String, lead: String) -> Prompt {
        if model.hasEmbeddedChatTemplate, model.chatTemplate != nil {
            return .chat([ChatMessage(role: .system, content: system), ChatMessage(role: .user, content: user)])
        }
        return .text("\(system)\n\n\(user)\n\n\(lead) ")
    }

    /// The schema's own `description` as the instruction, or a generic one.
    static func instruction(for schema: String) -> String {
        if case .string(let description)? = (try? JSONValue.parse(schema))?["description"] {
            return description
        }
        return "Extract the data the schema describes from the note."
    }

    /// The schema without its white space (fewer prompt tokens).
    static func compact(_ schema: String) -> String {
        var result = ""
        var inString = false, escaped = false
        for character in schema {
            if inString {
                result.append(character)
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
            } else if character == "\"" {
                inString = true
                result.append(character)
            } else if !character.isWhitespace {
                result.append(character)
            }
        }
        return result
    }

    static func clip(_ text: String) -> String {
        text.count <= maximumNoteCharacters ? text : String(text.prefix(maximumNoteCharacters)) + "…"
    }
}
