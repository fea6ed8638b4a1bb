import CSQLite
import EmberCore
import Foundation

/// The user's notes in one SQLite file: notes, tags, full-text search, summaries and versions.
///
/// One serial writer and a pool of concurrent readers, over a database in WAL mode. Every write
/// is one transaction committed with `synchronous=FULL`: when a writing method returns, the change
/// is on disk, and when it throws, nothing it began is stored and everything stored before is intact.
///
/// ```swift
/// let store = try NotesStore(path: "notes.db")
/// let note = try store.add(NoteDraft(title: "Café résumé", body: "Ideas for the menu"))
/// let hits = try store.search("cafe resume")
/// ```
public final class NotesStore: Sendable {
    /// Limits and injected sources; the defaults suit an app.
    public struct Configuration: Sendable {
        /// How long a write waits for another program's lock before failing (`sqlite3_busy_timeout`).
        public var busyTimeoutMilliseconds: Int32 = 5000
        /// The largest note body, in UTF-8 bytes. A larger one is refused with ``NotesError/Code/tooLarge``.
        public var maximumBodyBytes = 2 * 1024 * 1024
        /// The largest title, in UTF-8 bytes.
        public var maximumTitleBytes = 1024
        /// The longest tag, in characters.
        public var maximumTagCharacters = 100
        /// The largest summary, in UTF-8 bytes.
        public var maximumSummaryBytes = 64 * 1024
        /// A cap on the database file's size (SQLite's `max_page_count`); writes past it fail like a
        /// full disk. Nil: no cap beyond the disk.
        public var maximumDatabaseBytes: Int?
        /// Whether a missing file is created; when false, opening it fails with ``NotesError/Code/noDatabase``.
        public var createIfMissing = true
        /// The weight of a title match relative to a body match in `bm25()`.
        public var titleWeight = 10.0
        /// The clock for created, updated, trashed and saved times.
        public var now: @Sendable () -> Date = { Date() }

        public init() {}
    }

    /// The database file's path.
    public let path: String
    let configuration: Configuration
    let writer: SerialWriter
    let readers: ReaderPool

    /// Opens (or creates) the notes database at `path` and brings its schema up to date.
    public convenience init(path: String, configuration: Configuration = Configuration()) throws(NotesError) {
        try self.init(path: path, configuration: configuration, migratingThrough: nil)
    }

    /// Opens the database and applies the migrations it lacks, through the one named
    /// `lastMigration` (nil: all). Tests stop early to build a database of an older schema.
    init(path: String, configuration: Configuration, migratingThrough lastMigration: String?) throws(NotesError) {
        self.path = path
        self.configuration = configuration
        if let kind = Self.nonRegularKind(path) {
            // SQLite would read a device as an empty database and create PATH-journal beside it.
            throw NotesError(.notADatabase, "\(path) is \(kind), not a notes database file; it was left as it is")
        }
        if !configuration.createIfMissing, !FileManager.default.fileExists(atPath: path) {
            throw NotesError(.noDatabase, "there is no notes database at \(path)")
        }
        let timeout = configuration.busyTimeoutMilliseconds
        let connection = try storing(path: path, unsaved: nil) { () throws -> SQLiteConnection in
            let connection = try SQLiteConnection(path: path, mode: .readWriteCreate)
            connection.setBusyTimeout(milliseconds: timeout)
            let journalMode = try connection.first("PRAGMA journal_mode = WAL") { $0.text(0) }
            guard journalMode?.lowercased() == "wal" else {
                throw NotesError(.database, "\(path) cannot use a write-ahead log (journal mode \(journalMode ?? "unknown")); it was not changed")
            }
            try connection.execute("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            if let bytes = configuration.maximumDatabaseBytes {
                let pageSize = try connection.first("PRAGMA page_size") { $0.integer(0) } ?? 4096
                try connection.execute("PRAGMA max_page_count = \(max(1, Int64(bytes) / pageSize))")
            }
            return connection
        }
        writer = SerialWriter(connection: connection)
        readers = ReaderPool(maximumIdleCount: 4) {
            let reader = try SQLiteConnection(path: path, mode: .readOnly)
            reader.setBusyTimeout(milliseconds: timeout)
            return reader
        }
        _ = try Migrator.migrate(writer, path: path, through: lastMigration, now: Timestamp.milliseconds(configuration.now()))
    }

    /// What `path` names when it exists and is not a regular file ("a directory", "a device"…), else nil.
    static func nonRegularKind(_ path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        switch status.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a directory"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFIFO: return "a pipe"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// The names of the schema migrations applied to this database, oldest first.
    public func appliedMigrations() throws(NotesError) -> [String] {
        try read { connection in try Migrator.appliedNames(connection) }
    }

    /// Problems SQLite finds in the file (`PRAGMA integrity_check`) and in the search index
    /// (FTS5 `integrity-check`, which also compares the index with the notes); empty when sound.
    public func integrityProblems() throws(NotesError) -> [String] {
        try storing(path: path, unsaved: nil) {
            try writer.write { connection -> [String] in
                var problems = try connection.query("PRAGMA integrity_check") { $0.text(0) }.filter { $0 != "ok" }
                do {
                    try connection.run("INSERT INTO notes_fts (notes_fts, rank) VALUES ('integrity-check', 1)")
                } catch let error as SQLiteError where error.primaryCode == SQLITE_CORRUPT {
                    problems.append("the search index does not match the notes: \(error.message)")
                }
                return problems
            }
        }
    }

    // MARK: Running transactions

    /// Runs a write transaction; a failure becomes a ``NotesError`` saying `unsaved` did not happen.
    func write<Value>(unsaved: @autoclosure () -> String, _ body: (SQLiteConnection) throws -> Value) throws(NotesError) -> Value {
        do {
            return try writer.write(body)
        } catch let error as NotesError {
            throw error
        } catch let error as SQLiteError {
            throw NotesError(error, path: path, unsaved: unsaved())
        } catch {
            throw NotesError(.database, "\(error); \(unsaved()) and nothing stored was lost")
        }
    }

    /// Runs a read transaction on a pooled read-only connection.
    func read<Value>(_ body: (SQLiteConnection) throws -> Value) throws(NotesError) -> Value {
        try storing(path: path, unsaved: nil) { try readers.read(body) }
    }

    /// The current time in the database's unit.
    var nowMilliseconds: Int64 { Timestamp.milliseconds(configuration.now()) }
}
