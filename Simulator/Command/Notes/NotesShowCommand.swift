import ArgumentParser
import EmberNotes

/// `ember notes show`: one note with its tags, summaries and, on request, its versions.
struct NotesShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a note with its tags and summaries (a summary is stale when the body changed after it).")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The note's id.")
    var id: NoteIDArgument

    @Flag(help: "Also list the note's earlier versions.")
    var versions = false

    @OptionGroup var output: NotesOutputOptions

    func run() throws {
        let store = try notes.openStore(creating: false)
        let note = try store.note(id.id)
        let summaries = try store.summaries(of: note.id)
        let extractions = try store.extractions(of: note.id)
        let history = versions ? try store.versions(of: note.id) : []
        if output.json {
            var object = NotesJSON.note(note)
            object.removeLast()
            object += ",\"summaries\":\(NotesJSON.array(summaries.map { NotesJSON.summary($0) }))"
            object += ",\"extractions\":\(NotesJSON.array(extractions.map { NotesJSON.extraction($0) }))"
            if versions { object += ",\"versions\":\(NotesJSON.array(history.map(NotesJSON.version)))" }
            print(object + "}")
            return
        }
        print("# \(NotesText.title(note.title))")
        var facts = ["note \(note.id)", "created \(NotesText.minute(note.created))", "updated \(NotesText.minute(note.updated))"]
        if note.isPinned { facts.append("pinned") }
        if note.isArchived { facts.append("archived") }
        if let trashed = note.trashed { facts.append("in the trash since \(NotesText.minute(trashed))") }
        print(facts.joined(separator: " · "))
        if !note.tags.isEmpty { print("tags: \(note.tags.joined(separator: ", "))") }
        print("")
        print(note.body)
        for summary in summaries {
            print("")
            print("summary by \(summary.model), \(NotesText.minute(summary.created))\(summary.isStale ? ", stale: the body changed since" : ""):")
            print(summary.text)
        }
        for extraction in extractions {
            print("")
            print("\(extraction.kind) by \(extraction.model), \(NotesText.minute(extraction.created))\(extraction.isStale ? ", stale: the body changed since" : ""):")
            print(extraction.text)
        }
        if versions {
            print("")
            if history.isEmpty { print("no earlier versions") }
            for version in history {
                print("version \(version.number)  saved \(NotesText.minute(version.saved))  \(NotesText.title(version.title))  (\(version.body.utf8.count) bytes)")
            }
        }
    }
}
