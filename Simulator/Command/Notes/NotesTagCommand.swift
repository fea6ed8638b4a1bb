import ArgumentParser
import EmberNotes

/// `ember notes tag`: adds or removes a note's tags, or lists every tag.
struct NotesTagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag",
        abstract: "Add tags to a note (or remove them with --remove); without an id, list every tag.")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The note's id; leave it out to list the tags.")
    var id: NoteIDArgument?

    @Argument(help: "Tag names.")
    var names: [String] = []

    @Flag(help: "Remove the tags instead of adding them.")
    var remove = false

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        if id != nil, names.isEmpty { throw ValidationError("Name at least one tag to \(remove ? "remove" : "add").") }
        if id == nil, remove { throw ValidationError("--remove needs a note id and tag names.") }
    }

    func run() throws {
        let store = try notes.openStore(creating: false)
        guard let id else {
            let tags = try store.tags()
            if output.json {
                print(NotesJSON.array(tags.map { "{\"name\":\(JSONText.string($0.name)),\"notes\":\($0.noteCount)}" }))
            } else {
                for tag in tags { print("\(tag.name)  \(tag.noteCount)") }
            }
            return
        }
        let note = remove ? try store.removeTags(names, from: id.id) : try store.addTags(names, to: id.id)
        print(output.json ? NotesJSON.note(note, includeBody: false) : "note \(note.id) tags: \(note.tags.joined(separator: ", "))")
    }
}
