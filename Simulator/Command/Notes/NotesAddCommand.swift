import ArgumentParser
import EmberNotes

/// `ember notes add`: stores a new note and prints its id once the commit is on disk.
struct NotesAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a note; prints its id after the commit ({\"id\":N} with --json).")

    @ParentCommand var notes: NotesCommand

    @Option(help: "The note's title (one line).")
    var title = ""

    @OptionGroup var body: NotesBodyOptions

    @Option(name: .customLong("tag"), help: ArgumentHelp("A tag; repeat for more.", valueName: "name"))
    var tags: [String] = []

    @Flag(help: "Pin the note.")
    var pin = false

    @Flag(help: "Archive the note.")
    var archive = false

    @OptionGroup var output: NotesOutputOptions

    func run() throws {
        let text = try body.read() ?? ""
        let store = try notes.openStore(creating: true)
        let note = try store.add(NoteDraft(title: title, body: text, tags: tags, isPinned: pin, isArchived: archive))
        print(output.json ? "{\"id\":\(note.id)}" : "added note \(note.id)")
    }
}
