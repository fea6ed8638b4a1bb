import ArgumentParser
import Ember
import EmberLM
import EmberNotes
import EmberScheduler

/// `ember notes summarize`: summarizes a note with the on-device model (background work through the
/// scheduler) and stores the summary with the model's name — or stores one given with `--text`.
struct NotesSummarizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summarize",
        abstract: "Summarize a note with the model (or store a summary given with --text) and keep it with the model's name.",
        discussion: """
            The model runs the summary as background work through Ember's token scheduler; a note longer than \
            the context is summarized in parts, then the parts are combined. With --text, the given summary is \
            stored as written by --model.
            """)

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The note's id.")
    var id: NoteIDArgument

    @Option(help: "A summary written elsewhere, to store instead of running the model.")
    var text: String?

    @Option(help: "The model: an alias (smollm2, gemma3) or GGUF path to run; with --text, the name of whoever wrote it.")
    var model: String = "smollm2"

    @Option(help: "Worker threads for the model.")
    var threads: Int?

    @OptionGroup var output: NotesOutputOptions

    func run() async throws {
        let store = try notes.openStore(creating: false)
        if let text {
            let summary = try store.storeSummary(text, model: model, for: id.id)
            print(output.json ? NotesJSON.summary(summary) : "stored the summary of note \(id.id) by \(summary.model)")
            return
        }
        let note = try store.note(id.id)
        let languageModel = try LanguageModel(path: ModelCatalog.resolve(model))
        let platform = NominalPlatform()
        let scheduler = TokenScheduler(model: languageModel, policy: RacePolicy(), thermal: platform, power: platform,
                                       threadCount: threads ?? defaultThreadCount())
        let summarizer = NoteSummarizer(model: languageModel, scheduler: scheduler)
        let result = try await summarizer.summarize(title: note.title, text: note.body)
        let summary = try store.storeSummary(result.summary, model: model, for: id.id)
        print(output.json ? NotesJSON.summary(summary) : "note \(id.id) (\(result.parts) part\(result.parts == 1 ? "" : "s")): \(summary.text)")
    }
}
