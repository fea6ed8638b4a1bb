import ArgumentParser
import EmberNotes

/// `ember notes summarize`: stores a summary written elsewhere, with the model that wrote it.
struct NotesSummarizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summarize",
        abstract: "Store a summary of a note with --text and --model.",
        discussion: """
            Summarizing with an on-device model arrives with the scheduler, which runs it as background work \
            within the phone's budgets; until then this command stores a summary given with --text.
            """)

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The note's id.")
    var id: NoteIDArgument

    @Option(help: "The summary's text.")
    var text: String?

    @Option(help: "The model that wrote the summary (e.g. smollm2, gemma3, or a person's name).")
    var model: String?

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        guard text != nil else {
            throw ValidationError("Summarizing with a model is not available yet: it arrives with the scheduler. "
                + "Store a summary you have with --text TEXT --model NAME.")
        }
        guard model != nil else { throw ValidationError("Name the model (or person) that wrote the summary with --model.") }
    }

    func run() throws {
        let store = try notes.openStore(creating: false)
        let summary = try store.storeSummary(text ?? "", model: model ?? "", for: id.id)
        print(output.json ? NotesJSON.summary(summary) : "stored the summary of note \(id.id) by \(summary.model)")
    }
}
