import ArgumentParser
import EmberNotes

/// `ember notes rm`: moves notes to the trash, or deletes them for good.
struct NotesRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Move notes to the trash; --purge deletes them for good, --empty-trash deletes everything in the trash.")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The notes' ids.")
    var ids: [NoteIDArgument] = []

    @Flag(help: "Delete for good, with versions and summaries, instead of moving to the trash.")
    var purge = false

    @Flag(name: .customLong("empty-trash"), help: "Delete every note in the trash for good.")
    var emptyTrash = false

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        if emptyTrash, !ids.isEmpty { throw ValidationError("--empty-trash takes no ids.") }
        if !emptyTrash, ids.isEmpty { throw ValidationError("Give the id of a note to remove, or --empty-trash.") }
    }

    func run() throws {
        let store = try notes.openStore(creating: false)
        if emptyTrash {
            let count = try store.emptyTrash()
            print(output.json ? "{\"purged\":\(count)}" : "deleted \(count) notes from the trash for good")
            return
        }
        // All or nothing: one id without a note changes no note.
        let noteIDs = ids.map(\.id)
        if purge {
            for id in try store.purge(noteIDs) {
                print(output.json ? "{\"id\":\(id),\"purged\":true}" : "deleted note \(id) for good")
            }
        } else {
            for note in try store.moveToTrash(noteIDs) {
                print(output.json ? "{\"id\":\(note.id),\"trashed\":true}" : "moved note \(note.id) to the trash")
            }
        }
    }
}
