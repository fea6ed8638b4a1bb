import CSQLite
import Foundation

/// The one connection that writes. Every write transaction runs on it, one at a time.
///
/// `@unchecked Sendable`: `connection` is used only while `lock` is held, so at most one thread
/// touches it at once. The connection runs in WAL mode with `synchronous=FULL`: when
/// ``write(_:)`` returns, the transaction is in the write-ahead log and the log is on disk.
final class SerialWriter: @unchecked Sendable {
    private let lock = NSLock()
    private let connection: SQLiteConnection

    init(connection: SQLiteConnection) {
        self.connection = connection
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`. When `body` or the commit throws, the
    /// transaction is rolled back and nothing it wrote stays.
    func write<Value>(_ body: (SQLiteConnection) throws -> Value) throws -> Value {
        lock.lock()
        defer { lock.unlock() }
        try connection.execute("BEGIN IMMEDIATE")
        do {
            let value = try body(connection)
            try connection.execute("COMMIT")
            return value
        } catch {
            // SQLite may already have rolled back (after SQLITE_FULL, for example).
            if !connection.isInAutocommitMode { try? connection.execute("ROLLBACK") }
            throw error
        }
    }

    /// Runs `body` outside any transaction (for pragmas and `VACUUM`-like statements).
    func withConnection<Value>(_ body: (SQLiteConnection) throws -> Value) rethrows -> Value {
        lock.lock()
        defer { lock.unlock() }
        return try body(connection)
    }
}

/// Read-only connections, each lent to one reader at a time; readers run alongside the writer.
///
/// `@unchecked Sendable`: `idle` is touched only under `lock`; a connection taken from it belongs
/// to one closure until it is put back.
final class ReaderPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [SQLiteConnection] = []
    private let open: @Sendable () throws -> SQLiteConnection
    private let maximumIdleCount: Int

    init(maximumIdleCount: Int, open: @escaping @Sendable () throws -> SQLiteConnection) {
        self.maximumIdleCount = maximumIdleCount
        self.open = open
    }

    /// Runs `body` in a read transaction: it sees one snapshot, whatever the writer commits meanwhile.
    func read<Value>(_ body: (SQLiteConnection) throws -> Value) throws -> Value {
        let connection = try take()
        defer { giveBack(connection) }
        try connection.execute("BEGIN DEFERRED")
        defer { if !connection.isInAutocommitMode { try? connection.execute("COMMIT") } }
        return try body(connection)
    }

    private func take() throws -> SQLiteConnection {
        lock.lock()
        if let connection = idle.popLast() {
            lock.unlock()
            return connection
        }
        lock.unlock()
        return try open()
    }

    private func giveBack(_ connection: SQLiteConnection) {
        lock.lock()
        defer { lock.unlock() }
        if idle.count < maximumIdleCount { idle.append(connection) }
    }
}
