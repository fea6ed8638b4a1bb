import CSQLite

/// A failure SQLite reported: its extended result code and `sqlite3_errmsg` text.
///
/// Only the SQLite layer throws this; the store turns it into a ``NotesError`` that says what
/// was not done (see `NotesError.init(_:path:unsaved:)`).
struct SQLiteError: Error, Sendable {
    /// The extended result code (`sqlite3_extended_errcode`), e.g. `SQLITE_IOERR_WRITE`.
    var code: Int32
    /// SQLite's own text for the failure.
    var message: String

    /// The primary result code: the extended code's low byte (`SQLITE_FULL`, `SQLITE_NOTADB`, …).
    var primaryCode: Int32 { code & 0xff }
}

/// A value bound to a statement parameter.
enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}

/// One open `sqlite3*` database connection.
///
/// Not thread-safe: one owner at a time. ``SerialWriter`` and ``ReaderPool`` are the owners, and
/// they hand a connection to one closure at a time. Prepared statements are cached by SQL text.
final class SQLiteConnection {
    /// How a connection opens its file (`SQLITE_OPEN_*` flags).
    enum Mode {
        /// `SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE`: writes, and creates a missing file.
        case readWriteCreate
        /// `SQLITE_OPEN_READONLY`: reads only.
        case readOnly
    }

    let path: String
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    /// Opens `path` (`sqlite3_open_v2`). SQLite reads nothing yet: a file that is not a database
    /// is reported by the first statement, with `SQLITE_NOTADB`.
    init(path: String, mode: Mode) throws(SQLiteError) {
        self.path = path
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        switch mode {
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        }
        var opened: OpaquePointer?
        let result = sqlite3_open_v2(path, &opened, flags, nil)
        guard result == SQLITE_OK, let opened else {
            let message = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(result))
            if let opened { sqlite3_close_v2(opened) }
            throw SQLiteError(code: result, message: message)
        }
        handle = opened
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// The error SQLite holds for this connection after a call returned `code`.
    func error(_ code: Int32) -> SQLiteError {
        let extended = sqlite3_extended_errcode(handle)
        return SQLiteError(code: extended != 0 ? extended : code, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Sets how long a statement waits for another connection's lock (`sqlite3_busy_timeout`).
    func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(handle, milliseconds)
    }

    /// Runs one or more statements that take no parameters (`sqlite3_exec`).
    func execute(_ sql: String) throws(SQLiteError) {
        let result = sqlite3_exec(handle, sql, nil, nil, nil)
        guard result == SQLITE_OK else { throw error(result) }
    }

    /// Runs one statement to completion with `values` bound to its parameters.
    func run(_ sql: String, _ values: [SQLiteValue] = []) throws(SQLiteError) {
        let statement = try prepared(sql, values)
        defer { sqlite3_reset(statement) }
        while true {
            let result = sqlite3_step(statement)
            if result == SQLITE_DONE { return }
            if result != SQLITE_ROW { throw error(result) }
        }
    }

    /// Runs a query and maps each row with `transform`.
    func query<Value>(_ sql: String, _ values: [SQLiteValue] = [], _ transform: (SQLiteRow) throws(SQLiteError) -> Value) throws(SQLiteError) -> [Value] {
        let statement = try prepared(sql, values)
        defer { sqlite3_reset(statement) }
        var rows: [Value] = []
        while true {
            let result = sqlite3_step(statement)
            if result == SQLITE_DONE { return rows }
            guard result == SQLITE_ROW else { throw error(result) }
            rows.append(try transform(SQLiteRow(statement: statement)))
        }
    }

    /// The first row of a query mapped by `transform`, or nil when there is none.
    func first<Value>(_ sql: String, _ values: [SQLiteValue] = [], _ transform: (SQLiteRow) throws(SQLiteError) -> Value) throws(SQLiteError) -> Value? {
        let statement = try prepared(sql, values)
        defer { sqlite3_reset(statement) }
        let result = sqlite3_step(statement)
        if result == SQLITE_DONE { return nil }
        guard result == SQLITE_ROW else { throw error(result) }
        return try transform(SQLiteRow(statement: statement))
    }

    /// The rowid of the last row inserted on this connection (`sqlite3_last_insert_rowid`).
    var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows changed by the last statement (`sqlite3_changes64`).
    var changedRowCount: Int { Int(sqlite3_changes64(handle)) }

    /// True outside a transaction (`sqlite3_get_autocommit`).
    var isInAutocommitMode: Bool { sqlite3_get_autocommit(handle) != 0 }

    /// A cached prepared statement, reset, with `values` bound.
    private func prepared(_ sql: String, _ values: [SQLiteValue]) throws(SQLiteError) -> OpaquePointer {
        let statement: OpaquePointer
        if let cached = statements[sql] {
            statement = cached
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        } else {
            var made: OpaquePointer?
            let result = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &made, nil)
            guard result == SQLITE_OK, let made else { throw error(result) }
            statements[sql] = made
            statement = made
        }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let result: Int32
            switch value {
            case .null: result = sqlite3_bind_null(statement, index)
            case .integer(let integer): result = sqlite3_bind_int64(statement, index, integer)
            case .real(let real): result = sqlite3_bind_double(statement, index, real)
            case .text(let text): result = Self.bind(text, to: statement, at: index)
            }
            guard result == SQLITE_OK else { throw error(result) }
        }
        return statement
    }

    /// Binds `text` as UTF-8 that SQLite copies (`sqlite3_bind_text` with `SQLITE_TRANSIENT`).
    private static func bind(_ text: String, to statement: OpaquePointer, at index: Int32) -> Int32 {
        var text = text
        return text.withUTF8 { bytes in
            guard bytes.count <= Int(Int32.max) else { return SQLITE_TOOBIG }
            // An empty buffer may have no base address; SQLite would bind that as NULL.
            guard let base = bytes.baseAddress, bytes.count > 0 else {
                return sqlite3_bind_text(statement, index, "", 0, nil)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                csqlite_bind_text_transient(statement, index, $0, Int32(bytes.count))
            }
        }
    }
}

/// The current row of a stepping statement; valid only inside the `query` closure.
struct SQLiteRow {
    fileprivate let statement: OpaquePointer

    /// The column as an integer (`sqlite3_column_int64`); 0 for NULL.
    func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    /// The column as a real number (`sqlite3_column_double`).
    func real(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }

    /// True when the column is NULL.
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    /// The column as text (`sqlite3_column_text`); "" for NULL. Bytes that are not UTF-8 (written
    /// by another program) become U+FFFD.
    func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// The column as text, or nil for NULL.
    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    /// The column as an integer, or nil for NULL.
    func optionalInteger(_ column: Int32) -> Int64? { isNull(column) ? nil : integer(column) }
}
