import Foundation
import Testing
@testable import EmberNotes

/// Bad input gets one clear error and loses nothing already stored: invalid UTF-8, a 10 MB note,
/// a file that is not SQLite, a read-only directory, a full disk.
@Suite(.serialized)
struct BadInputTests {
    /// Every stored note is still there with its text, and SQLite and the index find no damage.
    static func expectIntact(_ store: NotesStore, _ notes: [Note], sourceLocation: SourceLocation = #_sourceLocation) throws {
        for note in notes {
            #expect(try store.note(note.id) == note, sourceLocation: sourceLocation)
        }
        #expect(try store.integrityProblems().isEmpty, sourceLocation: sourceLocation)
    }

    // MARK: Invalid UTF-8

    @Test("UTF-8 validation finds the first ill-formed byte", arguments: [
        ([0x61, 0x62, 0x63], nil),
        (Array("Café 日本 😀".utf8), nil),
        ([0x61, 0xFF], 1),
        ([0x61, 0xC0, 0x80], 1),              // overlong NUL
        ([0xE0, 0x80, 0x80], 0),              // overlong three-byte form
        ([0x61, 0x62, 0xED, 0xA0, 0x80], 2),  // a UTF-16 surrogate
        ([0xF4, 0x90, 0x80, 0x80], 0),        // past U+10FFFF
        ([0x61, 0xE2, 0x82], 1),              // cut short
        ([0xC3, 0xA9, 0x80], 2),              // a stray continuation byte
    ] as [([UInt8], Int?)])
    func utf8(bytes: [UInt8], offset: Int?) {
        #expect(UTF8Text.firstInvalidOffset(in: bytes) == offset)
    }

    @Test("a Markdown file that is not UTF-8 is refused with its offset; nothing is imported")
    func invalidUTF8Import() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let kept = try store.add(NoteDraft(title: "Kept", body: "safe"))
        let good = directory.file("good.md"), bad = directory.file("bad.md")
        try Data("---\ntitle: Good\n---\nok".utf8).write(to: URL(fileURLWithPath: good))
        try Data([0x2D, 0x2D, 0x2D, 0x0A, 0x74, 0x69, 0x74, 0x6C, 0x65, 0x3A, 0x20, 0x43, 0x61, 0x66, 0xE9, 0x0A]).write(to: URL(fileURLWithPath: bad))
        let error = try #require(throws: NotesError.self) { try store.importMarkdown(from: [good, bad]) }
        #expect(error.code == .invalidUTF8)
        #expect(error.message == "\(bad) is not valid UTF-8 (the first bad byte is at offset 14); nothing was imported")
        #expect(try store.notes(NoteFilter(place: .all)) == [kept])
        try Self.expectIntact(store, [kept])
    }

    // MARK: A 10 MB note

    @Test("a 10 MB note is refused with the limit named; a note at the 2 MiB limit is kept whole")
    func hugeNote() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let kept = try store.add(NoteDraft(title: "Kept", body: "safe"))
        let tenMegabytes = String(repeating: "lorem ipsum dolor sit amet, ", count: 10_000_000 / 28 + 1)

        let added = try #require(throws: NotesError.self) { try store.add(NoteDraft(title: "Huge", body: tenMegabytes)) }
        #expect(added.code == .tooLarge)
        #expect(added.message == "the body is 9.5 MiB but a note holds at most 2.0 MiB; split it into smaller notes. "
            + "The new note “Huge” was not saved and nothing stored was lost")
        let edited = try #require(throws: NotesError.self) { try store.edit(kept.id, NoteChange(body: tenMegabytes)) }
        #expect(edited.code == .tooLarge)
        #expect(edited.message.hasSuffix("Note 1 was not saved and nothing stored was lost"))

        let file = directory.file("huge.md")
        try Data(("---\ntitle: Huge\n---\n" + tenMegabytes).utf8).write(to: URL(fileURLWithPath: file))
        let imported = try #require(throws: NotesError.self) { try store.importMarkdown(from: [file]) }
        #expect(imported.code == .tooLarge)
        try Self.expectIntact(store, [kept])
        #expect(try store.notes(NoteFilter(place: .all)).count == 1)

        let limit = NotesStore.Configuration().maximumBodyBytes
        var atLimit = "needle " + String(repeating: "hay ", count: (limit - 7) / 4)
        atLimit += String(repeating: "!", count: limit - atLimit.utf8.count)
        #expect(atLimit.utf8.count == limit)
        let big = try store.add(NoteDraft(title: "Big", body: atLimit))
        #expect(try store.note(big.id).body == atLimit)
        #expect(try store.search("needle").map(\.noteID) == [big.id])
        try Self.expectIntact(store, [kept, big])
    }

    // MARK: Not an SQLite file

    @Test("a file that is not SQLite is refused and left byte for byte as it was")
    func notADatabase() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var generator = SplitMix64(seed: 9)
        let contents: [Data] = [
            Data(String(repeating: "This is a shopping list, not a database.\n", count: 200).utf8),
            Data((0..<8192).map { _ in UInt8(truncatingIfNeeded: generator.next()) }),
            Data("SQLite format 3\0 but only a header".utf8),
        ]
        for (index, content) in contents.enumerated() {
            let path = directory.file("notes-\(index).db")
            try content.write(to: URL(fileURLWithPath: path))
            let error = try #require(throws: NotesError.self) { try NotesStore(path: path, configuration: .testing()) }
            #expect(error.code == .notADatabase, "\(error)")
            #expect(error.message == "\(path) is not an SQLite database; it was left as it is")
            #expect(FileManager.default.contents(atPath: path) == content)
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(left == ["notes-0.db", "notes-1.db", "notes-2.db"], "no -wal or -shm files left beside them")
    }

    @Test("a missing database is not created when the caller asks only to open one")
    func missingDatabase() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = NotesStore.Configuration.testing()
        configuration.createIfMissing = false
        let path = directory.file("none.db")
        let error = try #require(throws: NotesError.self) { try NotesStore(path: path, configuration: configuration) }
        #expect(error.code == .noDatabase)
        #expect(!FileManager.default.fileExists(atPath: path))
        let nowhere = try #require(throws: NotesError.self) { try NotesStore(path: directory.file("no/such/dir/notes.db")) }
        #expect(nowhere.code == .cannotWrite)
        #expect(nowhere.message.contains("does not exist"), "\(nowhere.message)")
    }

    // MARK: A read-only directory

    @Test("a database in a read-only directory is refused with the reason; its notes are intact after",
          .enabled(if: getuid() != 0 || TinyFileSystem.canMount, "root ignores directory permissions and this process cannot mount a tmpfs"))
    func readOnlyDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Root writes through directory permissions, so as root the directory is a read-only tmpfs.
        let place = directory.file("place")
        let fileSystem = getuid() == 0 ? try TinyFileSystem(size: "4m", at: place) : nil
        defer { fileSystem?.unmount() }
        if fileSystem == nil { try FileManager.default.createDirectory(atPath: place, withIntermediateDirectories: true) }
        let path = place + "/notes.db"
        let notes = try {
            let store = try NotesStore(path: path, configuration: .testing())
            return try [store.add(NoteDraft(title: "One", body: "first")), store.add(NoteDraft(title: "Two", body: "second"))]
        }()

        func setReadOnly(_ readOnly: Bool) throws {
            if let fileSystem {
                try fileSystem.remount(readOnly: readOnly)
            } else {
                try FileManager.default.setAttributes([.posixPermissions: readOnly ? 0o555 : 0o755], ofItemAtPath: place)
            }
        }
        try setReadOnly(true)
        let reason = fileSystem == nil ? "the directory \(place) is read-only" : "the directory \(place) is on a read-only file system"
        let existing = try #require(throws: NotesError.self) { try NotesStore(path: path, configuration: .testing()) }
        #expect(existing.code == .cannotWrite)
        #expect(existing.message == "cannot write \(path): \(reason)")
        let fresh = try #require(throws: NotesError.self) { try NotesStore(path: place + "/new.db", configuration: .testing()) }
        #expect(fresh.code == .cannotWrite)
        #expect(fresh.message == "cannot write \(place)/new.db: \(reason)")
        try setReadOnly(false)

        let store = try NotesStore(path: path, configuration: .testing())
        try Self.expectIntact(store, notes)
    }

    // MARK: A full disk

    @Test("a database at its size cap fails like a full disk: the write is refused, nothing stored is lost")
    func sizeCap() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = NotesStore.Configuration.testing()
        configuration.maximumDatabaseBytes = 256 * 1024
        let store = try NotesStore(path: directory.file("notes.db"), configuration: configuration)
        try Self.fillUntilFull(store)
    }

    @Test("a real full disk (a tiny tmpfs): the write is refused, nothing stored is lost, and writing works again with room",
          .enabled(if: TinyFileSystem.canMount, "mounting a tmpfs needs root on Linux"))
    func fullDisk() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let fileSystem = try TinyFileSystem(size: "512k", at: directory.file("disk"))
        defer { fileSystem.unmount() }
        let path = fileSystem.path + "/notes.db"
        let stored = try {
            let store = try NotesStore(path: path, configuration: .testing())
            return try Self.fillUntilFull(store)
        }()
        try fileSystem.remount(readOnly: false, size: "8m")
        let store = try NotesStore(path: path, configuration: .testing())
        try Self.expectIntact(store, stored)
        _ = try store.add(NoteDraft(title: "After", body: "there is room again"))
    }

    /// Adds 6 KB notes until the disk is full, checks the error and that everything acknowledged
    /// is intact, then tries an edit that needs room. Returns the notes stored.
    @discardableResult
    static func fillUntilFull(_ store: NotesStore) throws -> [Note] {
        var stored: [Note] = []
        var failure: NotesError?
        for index in 0..<2000 {
            do {
                stored.append(try store.add(NoteDraft(title: "Note \(index)", body: String(repeating: "filler text \(index) ", count: 400))))
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure, "the disk never filled up")
        #expect(error.code == .diskFull)
        #expect(error.message == "the disk is full; the new note “Note \(stored.count)” was not saved and nothing stored was lost")
        #expect(stored.count > 5)

        let first = try #require(stored.first)
        let edit = try #require(throws: NotesError.self) {
            try store.edit(first.id, NoteChange(body: String(repeating: "a much longer body ", count: 5000)))
        }
        #expect(edit.code == .diskFull)
        #expect(edit.message == "the disk is full; note \(first.id) was not saved and nothing stored was lost")
        try expectIntact(store, stored)
        return stored
    }
}

/// A small seeded generator (SplitMix64) for reproducible test data.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
