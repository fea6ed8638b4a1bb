import ArgumentParser
import Ember
import EmberLM
import EmberModelCatalog
import EmberNotes
import Foundation

/// `ember notes extract`: structured data from a note, as JSON valid against a schema, stored with
/// the note (versioned like summaries: stale once the body changes).
struct NotesExtractCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract structured data from a note as JSON valid against a JSON Schema, and keep it with the note.",
        discussion: """
            The model's output is constrained to the schema (docs/STRUCTURED_OUTPUT.md lists the supported \
            subset and the shipped schemas in docs/schemas), so it always parses. The extraction is stored \
            under the schema file's name and the model's, with the SHA-256 of the body it was made from: an \
            edit afterwards leaves it stale.
            """)

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The note's id.")
    var id: NoteIDArgument

    @Option(help: ArgumentHelp("The JSON Schema file.", valueName: "file"))
    var schema: String

    @Option(help: "The model: an alias (smollm2, gemma3) or a GGUF path.")
    var model: String = "smollm2"

    @Option(help: "Worker threads for the model.")
    var threads: Int?

    @Option(help: "Longest output, in tokens.")
    var maxTokens: Int = 384

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        guard (1...4096).contains(maxTokens) else { throw ValidationError("--max-tokens must be between 1 and 4096, not \(maxTokens).") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, not \(threads).") }
    }

    func run() async throws {
        let schemaText = try OutputFormatOptions.readSchema(schema)
        do { _ = try Grammar(.jsonSchema(schemaText)) } catch { throw ValidationError(error.message) }
        let store = try notes.openStore(creating: false)
        let note = try store.note(id.id)
        let bodySHA256 = NotesStore.bodySHA256(note.body)
        let languageModel = try LanguageModel(path: ModelCatalog.resolve(model))
        let extractor = NoteExtractor(model: languageModel, threads: threads ?? defaultThreadCount(), maxTokens: maxTokens)
        let result = try await extractor.extract(title: note.title, text: note.body, schema: schemaText)
        let kind = URL(fileURLWithPath: schema).deletingPathExtension().lastPathComponent
        let extraction = try store.storeExtraction(result.text, kind: kind, model: model, for: id.id, bodySHA256: bodySHA256)
        if output.json {
            print(NotesJSON.extraction(extraction, statistics: result.statistics))
        } else {
            print(extraction.text)
        }
    }
}

/// `ember notes classify`: one label of a set for a note, stored with it like an extraction.
struct NotesClassifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify a note as exactly one of the given labels, and keep the label with the note.")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The note's id.")
    var id: NoteIDArgument

    @Option(help: "The labels, comma-separated (e.g. meeting,todo,idea).")
    var labels: String

    @Option(help: "The model: an alias (smollm2, gemma3) or a GGUF path.")
    var model: String = "smollm2"

    @Option(help: "Worker threads for the model.")
    var threads: Int?

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        _ = try OutputFormatOptions.parseChoices(labels, option: "--labels")
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, not \(threads).") }
    }

    func run() async throws {
        let choices = try OutputFormatOptions.parseChoices(labels, option: "--labels")
        let store = try notes.openStore(creating: false)
        let note = try store.note(id.id)
        let bodySHA256 = NotesStore.bodySHA256(note.body)
        let languageModel = try LanguageModel(path: ModelCatalog.resolve(model))
        let extractor = NoteExtractor(model: languageModel, threads: threads ?? defaultThreadCount(), maxTokens: 64)
        let result = try await extractor.classify(title: note.title, text: note.body, labels: choices)
        let extraction = try store.storeExtraction(result.text, kind: "classification", model: model, for: id.id, bodySHA256: bodySHA256)
        if output.json {
            print(NotesJSON.extraction(extraction, statistics: result.statistics))
        } else {
            print(extraction.text)
        }
    }
}

extension NotesJSON {
    static func extraction(_ extraction: NoteExtraction, statistics: GenerationStatistics? = nil) -> String {
        var fields = ["\"kind\":\(JSONText.string(extraction.kind))", "\"model\":\(JSONText.string(extraction.model))",
                      // The extraction is JSON itself (or a label, as a string).
                      "\"value\":\(extraction.kind == "classification" ? JSONText.string(extraction.text) : extraction.text)",
                      "\"created\":\(time(extraction.created))", "\"body_sha256\":\(JSONText.string(extraction.bodySHA256))",
                      "\"stale\":\(extraction.isStale)"]
        if let statistics {
            fields.append("\"generated_tokens\":\(statistics.generatedTokens)")
            fields.append("\"decode_tok_s\":\(JSONText.number(statistics.decodeTokensPerSecond))")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
}
