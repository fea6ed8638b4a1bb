import ArgumentParser
import EmberNotes

/// `ember notes edit`: changes a note's title, body, pin or archive flag.
struct NotesEditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Change a note's title, body, pin or archive flag.",
        discussion: "A new title or body first saves the old text as a version (see `show --versions` and `restore --version`).")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The note's id.")
    var id: NoteIDArgument

    @Option(help: "A new title.")
    var title: String?

    @OptionGroup var body: NotesBodyOptions

    @Flag(inversion: .prefixedNo, help: "Pin (--pin) or unpin (--no-pin) the note.")
    var pin: Bool?

    @Flag(inversion: .prefixedNo, help: "Archive (--archive) the note or take it out of the archive (--no-archive).")
    var archive: Bool?

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        if title == nil, body.body == nil, body.bodyFile == nil, pin == nil, archive == nil {
            throw ValidationError("Say what to change: --title, --body, --body-file, --pin/--no-pin or --archive/--no-archive.")
        }
    }

    func run() throws {
        let text = try body.read()
        let store = try notes.openStore(creating: false)
        let note = try store.edit(id.id, NoteChange(title: title, body: text, isPinned: pin, isArchived: archive))
        print(output.json ? NotesJSON.note(note) : "saved note \(note.id)")
    }
}
