import ArgumentParser
import EmberNotes

/// `ember notes restore`: brings a note back from the trash, or brings back an earlier version.
struct NotesRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Bring a note back from the trash, or with --version N bring back an earlier text.",
        discussion: "Restoring a version first saves the current text as a new version, so it can be undone.")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The note's id.")
    var id: NoteIDArgument

    @Option(help: "The version to bring back (see `show --versions`).")
    var version: Int?

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        if let version, version < 1 { throw ValidationError("--version counts from 1, not \(version).") }
    }

    func run() throws {
        let store = try notes.openStore(creating: false)
        let note = if let version { try store.restore(id.id, version: version) } else { try store.restoreFromTrash(id.id) }
        if output.json {
            print(NotesJSON.note(note))
        } else {
            print(version.map { "restored version \($0) of note \(note.id)" } ?? "restored note \(note.id) from the trash")
        }
    }
}
