/// One forward-only schema step: a name recorded in `ember_migrations` once its SQL has run.
///
/// A shipped migration is never edited or removed; a change to the schema is a new migration at
/// the end of ``NotesSchema/migrations``.
struct Migration: Sendable {
    let name: String
    let sql: String
}

/// The notes database schema, as the list of migrations that builds it.
///
/// Times are integer milliseconds since 1970-01-01 UTC. Booleans are 0 or 1.
enum NotesSchema {
    static let migrations: [Migration] = [
        Migration(name: "notes-and-tags", sql: """
            CREATE TABLE notes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                pinned INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
                archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
                trashed_at INTEGER
            );
            CREATE INDEX notes_by_place ON notes (trashed_at, archived, pinned, updated_at);
            CREATE TABLE tags (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE COLLATE NOCASE
            );
            CREATE TABLE note_tags (
                note_id INTEGER NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
                tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
                PRIMARY KEY (note_id, tag_id)
            ) WITHOUT ROWID;
            CREATE INDEX note_tags_by_tag ON note_tags (tag_id);
            """),
        // External-content FTS5 index over notes; triggers keep it in step, 'rebuild' indexes
        // the notes that existed before this migration.
        Migration(name: "full-text-search", sql: """
            CREATE VIRTUAL TABLE notes_fts USING fts5(
                title, body,
                content = 'notes', content_rowid = 'id',
                tokenize = 'unicode61 remove_diacritics 2'
            );
            CREATE TRIGGER notes_fts_after_insert AFTER INSERT ON notes BEGIN
                INSERT INTO notes_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
            END;
            CREATE TRIGGER notes_fts_after_delete AFTER DELETE ON notes BEGIN
                INSERT INTO notes_fts (notes_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
            END;
            CREATE TRIGGER notes_fts_after_update AFTER UPDATE OF title, body ON notes BEGIN
                INSERT INTO notes_fts (notes_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
                INSERT INTO notes_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
            END;
            INSERT INTO notes_fts (notes_fts) VALUES ('rebuild');
            """),
        Migration(name: "summaries", sql: """
            CREATE TABLE summaries (
                note_id INTEGER NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
                model TEXT NOT NULL,
                text TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                body_sha256 TEXT NOT NULL,
                PRIMARY KEY (note_id, model)
            ) WITHOUT ROWID;
            """),
        Migration(name: "version-history", sql: """
            CREATE TABLE note_versions (
                note_id INTEGER NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                saved_at INTEGER NOT NULL,
                PRIMARY KEY (note_id, number)
            );
            """),
        // Structured extractions and classifications (`ember notes extract`, `classify`), versioned
        // like summaries by the SHA-256 of the body they were made from.
        Migration(name: "extractions", sql: """
            CREATE TABLE extractions (
                note_id INTEGER NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                model TEXT NOT NULL,
                text TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                body_sha256 TEXT NOT NULL,
                PRIMARY KEY (note_id, kind, model)
            ) WITHOUT ROWID;
            """),
    ]
}

/// Applies the migrations a database lacks, in order, each in its own transaction together with
/// the row that records it.
enum Migrator {
    static let tableSQL = """
        CREATE TABLE IF NOT EXISTS ember_migrations (
            name TEXT PRIMARY KEY NOT NULL,
            applied_at INTEGER NOT NULL
        )
        """

    /// The names recorded in the database, in the order they were applied.
    static func appliedNames(_ connection: SQLiteConnection) throws(SQLiteError) -> [String] {
        try connection.query("SELECT name FROM ember_migrations ORDER BY rowid") { $0.text(0) }
    }

    /// Brings the database up to `migrations` (or only through the one named `last`).
    /// - Returns: the names applied now, in order.
    static func migrate(_ writer: SerialWriter, path: String, migrations: [Migration] = NotesSchema.migrations,
                        through last: String? = nil, now: Int64) throws(NotesError) -> [String] {
        let target: ArraySlice<Migration>
        if let last {
            guard let index = migrations.firstIndex(where: { $0.name == last }) else {
                preconditionFailure("no migration is named \(last)")
            }
            target = migrations[...index]
        } else {
            target = migrations[...]
        }
        let recorded = try storing(path: path, unsaved: "the database was not upgraded") {
            try writer.write { connection -> [String] in
                try connection.execute(tableSQL)
                let recorded = try appliedNames(connection)
                try checkKnown(recorded, migrations: migrations, path: path)
                return recorded
            }
        }
        var appliedNow: [String] = []
        for migration in target where !recorded.contains(migration.name) {
            // Checked again inside the transaction: another process may have migrated meanwhile.
            let applied = try storing(path: path, unsaved: "the database was not upgraded") {
                try writer.write { connection -> Bool in
                    let recorded = try appliedNames(connection)
                    try checkKnown(recorded, migrations: migrations, path: path)
                    if recorded.contains(migration.name) { return false }
                    try connection.execute(migration.sql)
                    try connection.run("INSERT INTO ember_migrations (name, applied_at) VALUES (?, ?)",
                                       [.text(migration.name), .integer(now)])
                    return true
                }
            }
            if applied { appliedNow.append(migration.name) }
        }
        return appliedNow
    }

    /// Refuses a database whose recorded migrations are not a prefix of the ones this build knows.
    private static func checkKnown(_ recorded: [String], migrations: [Migration], path: String) throws(NotesError) {
        let known = migrations.map(\.name)
        if let unknown = recorded.first(where: { !known.contains($0) }) {
            throw NotesError(.newerSchema, "\(path) was upgraded by a newer Ember (it has the migration '\(unknown)'); update Ember to open it")
        }
        guard recorded == Array(known.prefix(recorded.count)) else {
            throw NotesError(.database, "\(path) records its migrations out of order (\(recorded.joined(separator: ", "))); it was not changed")
        }
    }
}
