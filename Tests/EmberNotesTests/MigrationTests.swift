import Foundation
import Testing
@testable import EmberNotes

/// Each migration, applied to a database that stopped at the one before it and holds data.
struct MigrationTests {
    /// A database migrated only through `migration`, then filled by `fill` with that era's SQL.
    static func oldDatabase(through migration: String, in directory: TemporaryDirectory,
                            fill: (SQLiteConnection) throws -> Void) throws -> String {
        let path = directory.file("old.db")
        let old = try NotesStore(path: path, configuration: .testing(), migratingThrough: migration)
        try old.writer.write { connection in try fill(connection) }
        #expect(try old.appliedMigrations() == NotesSchema.migrations.prefix(while: { $0.name != migration }).map(\.name) + [migration])
        return path
    }

    @Test("the migrations have distinct names, in the order they were written")
    func names() {
        #expect(NotesSchema.migrations.map(\.name) == ["notes-and-tags", "full-text-search", "summaries", "version-history", "extractions"])
    }

    @Test("full-text-search indexes the notes that were there before it")
    func fullTextSearch() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try Self.oldDatabase(through: "notes-and-tags", in: directory) { connection in
            try connection.execute("""
                INSERT INTO notes (title, body, created_at, updated_at, pinned) VALUES ('Café résumé', 'old body', 1000, 2000, 1);
                INSERT INTO tags (name) VALUES ('old');
                INSERT INTO note_tags (note_id, tag_id) VALUES (1, 1);
                """)
        }
        let store = try NotesStore(path: path, configuration: .testing())
        #expect(try store.appliedMigrations() == NotesSchema.migrations.map(\.name))
        let note = try store.note(NoteID(1))
        #expect(note.title == "Café résumé" && note.body == "old body" && note.isPinned && note.tags == ["old"])
        #expect(note.created == Timestamp.date(milliseconds: 1000))
        #expect(try store.search("cafe resume").map(\.noteID) == [NoteID(1)])
        #expect(try store.integrityProblems().isEmpty)
    }

    @Test("summaries arrives on a database with notes and a search index")
    func summaries() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try Self.oldDatabase(through: "full-text-search", in: directory) { connection in
            try connection.execute("INSERT INTO notes (title, body, created_at, updated_at) VALUES ('Trip', 'train at nine', 1000, 1000)")
        }
        let store = try NotesStore(path: path, configuration: .testing())
        _ = try store.storeSummary("Train.", model: "smollm2", for: NoteID(1))
        #expect(try store.summaries(of: NoteID(1)).map(\.text) == ["Train."])
        #expect(try store.search("nine").map(\.noteID) == [NoteID(1)], "the index built before still works")
    }

    @Test("version-history arrives on a database with notes and summaries")
    func versionHistory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let hash = NotesStore.bodyHash("draft one")
        let path = try Self.oldDatabase(through: "summaries", in: directory) { connection in
            try connection.execute("""
                INSERT INTO notes (title, body, created_at, updated_at) VALUES ('Essay', 'draft one', 1000, 1000);
                INSERT INTO summaries (note_id, model, text, created_at, body_sha256) VALUES (1, 'gemma3', 'A draft.', 1500, '\(hash)');
                """)
        }
        let store = try NotesStore(path: path, configuration: .testing())
        #expect(try store.summaries(of: NoteID(1)).map(\.isStale) == [false])
        _ = try store.edit(NoteID(1), NoteChange(body: "draft two"))
        #expect(try store.versions(of: NoteID(1)).map(\.body) == ["draft one"])
        #expect(try store.summaries(of: NoteID(1)).map(\.isStale) == [true])
        #expect(try store.integrityProblems().isEmpty)
    }

    @Test("opening an up-to-date database applies nothing")
    func upToDate() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("notes.db")
        _ = try NotesStore(path: path, configuration: .testing())
        let store = try NotesStore(path: path, configuration: .testing())
        let applied = try Migrator.migrate(store.writer, path: path, now: 0)
        #expect(applied.isEmpty)
    }

    @Test("a database migrated by a newer Ember is refused and left as it is")
    func newerSchema() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("notes.db")
        let store = try NotesStore(path: path, configuration: .testing())
        _ = try store.add(NoteDraft(title: "Keep", body: "me"))
        try store.writer.write { connection in
            try connection.run("INSERT INTO ember_migrations (name, applied_at) VALUES ('from-the-future', 0)")
        }
        let error = try #require(throws: NotesError.self) { try NotesStore(path: path, configuration: .testing()) }
        #expect(error.code == .newerSchema)
        #expect(error.message.contains("from-the-future"))
        #expect(try store.note(NoteID(1)).body == "me")
    }
}
