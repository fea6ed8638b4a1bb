import ArgumentParser
import Ember
import EmberModelCatalog
import EmberLM
import EmberNotes
import EmberScheduler
import Foundation

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
        let display = SummaryProgressLine(noteID: id.id)
        defer { display.finish() }
        display.show("loading \(model)")
        let languageModel = try LanguageModel(path: ModelCatalog.resolve(model))
        let platform = NominalPlatform()
        let scheduler = TokenScheduler(model: languageModel, policy: RacePolicy(), thermal: platform, power: platform,
                                       threadCount: threads ?? defaultThreadCount())
        let summarizer = NoteSummarizer(model: languageModel, scheduler: scheduler)
        let result = try await summarizer.summarize(title: note.title, text: note.body) { progress in
            let step = progress.isCombining
                ? "combining the \(progress.stepCount - 1) parts"
                : progress.stepCount > 1 ? "part \(progress.step) of \(progress.stepCount - 1)" : "summarizing"
            display.show("\(step), \(progress.tokens) of at most \(progress.maxTokens) tokens")
        }
        display.finish()
        let summary = try store.storeSummary(result.summary, model: model, for: id.id)
        print(output.json ? NotesJSON.summary(summary) : "note \(id.id) (\(result.parts) part\(result.parts == 1 ? "" : "s")): \(summary.text)")
    }
}

/// The summary's progress on standard error, one rewritten line, only when standard error is a terminal.
final class SummaryProgressLine {
    private let prefix: String
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var drawn = false

    init(noteID: NoteID) { prefix = "note \(noteID): " }

    func show(_ text: String) {
        guard isTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(prefix)\(text)".utf8))
        drawn = true
    }

    /// Clears the line.
    func finish() {
        guard drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        drawn = false
    }
}
