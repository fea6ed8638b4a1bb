import Foundation
import Testing
@testable import EmberNotes
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Input that used to be read without limit, or changed notes before failing: imports from endless
/// devices and FIFOs, removals with a missing id, a database path that is not a file.
@Suite(.serialized)
struct BoundedInputTests {
    @Test("removing several notes when one id is missing changes none (trash and purge)")
    func removalIsAllOrNothing() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let one = try store.add(NoteDraft(title: "One", body: "first", tags: ["kept"]))
        let two = try store.add(NoteDraft(title: "Two", body: "second"))

        let trash = try #require(throws: NotesError.self) { try store.moveToTrash([one.id, NoteID(999), two.id, NoteID(998)]) }
        #expect(trash.code == .noSuchNote)
        #expect(trash.message == "there are no notes 999, 998; nothing was moved to the trash")
        let purge = try #require(throws: NotesError.self) { try store.purge([one.id, NoteID(999)]) }
        #expect(purge.message == "there is no note 999; nothing was deleted")
        try BadInputTests.expectIntact(store, [one, two])
        #expect(try store.notes(NoteFilter(place: .trash)).isEmpty)

        let trashed = try store.moveToTrash([two.id, one.id, two.id])
        #expect(trashed.map(\.id) == [two.id, one.id], "in the order given, each once")
        #expect(trashed.allSatisfy { $0.isInTrash })
        #expect(try store.purge([one.id, one.id]) == [one.id])
        #expect(try store.notes(NoteFilter(place: .trash)).map(\.id) == [two.id])
        #expect(throws: NotesError.self) { try store.note(one.id) }
        #expect(try store.integrityProblems().isEmpty)
    }

    @Test("import refuses an endless device after the limit and a FIFO inside a directory without waiting")
    func importIsBounded() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let kept = try store.add(NoteDraft(title: "Kept", body: "safe"))

        let zero = try #require(throws: NotesError.self) { try store.importMarkdown(from: ["/dev/zero"]) }
        #expect(zero.code == .tooLarge)
        #expect(zero.message == "/dev/zero is larger than 2.1 MiB, the most a note file holds; split it into smaller notes. Nothing was imported")

        let folder = directory.file("in")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data("---\ntitle: Good\n---\nfine".utf8).write(to: URL(fileURLWithPath: folder + "/1-good.md"))
        #expect(mkfifo(folder + "/2-pipe.md", 0o600) == 0)
        let fifo = try #require(throws: NotesError.self) { try store.importMarkdown(from: [folder]) }
        #expect(fifo.code == .fileSystem)
        #expect(fifo.message == "\(folder)/2-pipe.md is not a regular file; nothing was imported")
        try FileManager.default.removeItem(atPath: folder + "/2-pipe.md")

        try FileManager.default.createDirectory(atPath: folder + "/3-folder.md", withIntermediateDirectories: true)
        let isDirectory = try #require(throws: NotesError.self) { try store.importMarkdown(from: [folder]) }
        #expect(isDirectory.message == "\(folder)/3-folder.md is a directory, not a file; nothing was imported")
        try BadInputTests.expectIntact(store, [kept])
        #expect(try store.notes(NoteFilter(place: .all)) == [kept], "the good file read before the bad one was rolled back")
    }

    @Test("a database path that is a directory, a FIFO or a device is refused before SQLite opens it")
    func databaseMustBeARegularFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let fifo = directory.file("fifo.db")
        #expect(mkfifo(fifo, 0o600) == 0)
        let folder = directory.file("folder.db")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (path, kind) in [(folder, "a directory"), (fifo, "a pipe")] {
            let error = try #require(throws: NotesError.self) { try NotesStore(path: path, configuration: .testing()) }
            #expect(error.code == .notADatabase)
            #expect(error.message == "\(path) is \(kind), not a notes database file; it was left as it is")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["fifo.db", "folder.db"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
        // /dev/null would be read as an empty database and get a /dev/null-journal beside it.
        let journals = ["/dev/null-journal", "/dev/null-wal", "/dev/null-shm"]
        let before = journals.filter { FileManager.default.fileExists(atPath: $0) }
        let device = try #require(throws: NotesError.self) { try NotesStore(path: "/dev/null", configuration: .testing()) }
        #expect(device.message == "/dev/null is a device, not a notes database file; it was left as it is")
        let created = journals.filter { FileManager.default.fileExists(atPath: $0) && !before.contains($0) }
        for file in created { try? FileManager.default.removeItem(atPath: file) }
        #expect(created.isEmpty)
    }
}
