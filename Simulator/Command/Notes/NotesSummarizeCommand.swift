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
            The pipeline extracts the note's key sentences, has the model rewrite them (background work \
            through Ember's token scheduler under the adaptive policy, in the phone state given by --thermal, \
            --battery, --charging and --low-power), and keeps the extract instead when the rewrite loops, \
            echoes the prompt or says what the note does not. --method extractive skips the model. The \
            summary records the body it was made from, so an edit meanwhile leaves it stale. With --text, \
            the given summary is stored as written by --model.
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

    @Option(help: "abstractive (extract, rewrite with the model, check) or extractive (the extract alone, no model).")
    var method: SummaryMethodArgument = .abstractive

    @OptionGroup var platform: SummaryPlatformOptions

    @OptionGroup var output: NotesOutputOptions

    func run() async throws {
        let store = try notes.openStore(creating: false)
        if let text {
            let summary = try store.storeSummary(text, model: model, for: id.id)
            print(output.json ? NotesJSON.summary(summary, method: "given") : "stored the summary of note \(id.id) by \(summary.model)")
            return
        }
        let note = try store.note(id.id)
        // The body as the request starts: an edit while the model runs leaves the summary stale.
        let bodySHA256 = NotesStore.bodySHA256(note.body)
        let display = SummaryProgressLine(noteID: id.id)
        defer { display.finish() }
        var summarizerModel: LanguageModel?
        var scheduler: TokenScheduler?
        if method.method == .abstractive {
            display.show("loading \(model)")
            let languageModel = try LanguageModel(path: ModelCatalog.resolve(model))
            if let note = platform.deferralNote { printError(note) }
            summarizerModel = languageModel
            scheduler = platform.scheduler(model: languageModel, threads: threads ?? defaultThreadCount())
        }
        let result: NoteSummarizer.Result
        if let summarizerModel, let scheduler {
            let summarizer = NoteSummarizer(model: summarizerModel, scheduler: scheduler)
            result = try await summarizer.summarize(title: note.title, text: note.body, method: method.method,
                                                    deadlineSeconds: platform.deadline) { progress in
                display.show("rewriting the key points, \(progress.tokens) of at most \(progress.maxTokens) tokens")
            }
        } else {
            result = NoteSummarizer.extractiveResult(title: note.title, text: note.body)
        }
        display.finish()
        guard !result.summary.isEmpty else {
            throw NotesError(.invalidInput, "note \(id.id) has no words to summarize; nothing was stored")
        }
        let writer = method.method == .extractive ? "extractive" : model
        let summary = try store.storeSummary(result.summary, model: writer, for: id.id, bodySHA256: bodySHA256)
        if output.json {
            print(NotesJSON.summary(summary, method: result.method.rawValue, fallbackReason: result.fallbackReason))
        } else {
            let how = result.fallbackReason.map { "\(result.method.rawValue), the rewrite was rejected: \($0)" } ?? result.method.rawValue
            print("note \(id.id) (\(how))\(summary.isStale ? ", stale: the note changed meanwhile" : ""): \(summary.text)")
        }
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

/// `--method` of `notes summarize`.
enum SummaryMethodArgument: String, CaseIterable, ExpressibleByArgument {
    case abstractive, extractive

    var method: NoteSummarizer.Method { self == .abstractive ? .abstractive : .extractive }
}
