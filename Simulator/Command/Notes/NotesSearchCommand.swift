import ArgumentParser
import EmberNotes

/// `ember notes search`: full-text search, title matches first, with snippets.
struct NotesSearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Find notes that contain every word, title matches first.",
        discussion: "Accents and case do not matter (\"cafe\" finds \"Café\"); a word ending in * matches as a prefix. The trash is not searched.")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The words to find.")
    var words: [String]

    @Option(help: "At most this many results.")
    var limit = 20

    @Flag(name: .customLong("no-archived"), help: "Leave archived notes out.")
    var leaveOutArchived = false

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        if words.isEmpty { throw ValidationError("Give at least one word to search for.") }
        if limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit).") }
    }

    func run() throws {
        let store = try notes.openStore(creating: false)
        let hits = try store.search(words.joined(separator: " "), limit: limit, includeArchived: !leaveOutArchived)
        if output.json {
            print(NotesJSON.array(hits.map(NotesJSON.hit)))
            return
        }
        if hits.isEmpty { print("no notes match") }
        for hit in hits {
            print("\(hit.noteID)  \(NotesText.title(hit.title))")
            print("    \(hit.snippet.replacingOccurrences(of: "\n", with: " "))")
        }
    }
}
