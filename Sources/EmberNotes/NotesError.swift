import CSQLite
import EmberCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the notes store could not do what it was asked; the message tells a person what happened,
/// what was not saved, and that what was already stored is intact.
public struct NotesError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure, for code that reacts to it.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// The file exists but is not an SQLite database (`SQLITE_NOTADB`).
        case notADatabase
        /// There is no database at the path and the caller did not ask to create one.
        case noDatabase
        /// The file or its directory cannot be opened or written (missing, read-only, a directory).
        case cannotWrite
        /// The disk (or the database's size limit) is full (`SQLITE_FULL`).
        case diskFull
        /// Another program held the write lock longer than the busy timeout (`SQLITE_BUSY`).
        case busy
        /// SQLite found the file damaged (`SQLITE_CORRUPT`).
        case damaged
        /// The database was migrated by a newer Ember than this one.
        case newerSchema
        /// No note has the id.
        case noSuchNote
        /// The note has no version with the number.
        case noSuchVersion
        /// The note is in the trash; restore it before changing it.
        case noteInTrash
        /// The note is not in the trash, so it cannot be restored from there.
        case noteNotInTrash
        /// A title, body or tag is larger than the store accepts.
        case tooLarge
        /// Bytes given as text are not valid UTF-8.
        case invalidUTF8
        /// A value the store cannot accept (an empty note, an empty search, a bad tag…).
        case invalidInput
        /// A Markdown file's YAML front matter could not be read.
        case invalidFrontMatter
        /// Reading or writing a Markdown file failed.
        case fileSystem
        /// Any other failure SQLite reported.
        case database
    }

    /// The kind of failure.
    public let code: Code
    /// One line for a person: what went wrong, what was not done, what to try.
    public let message: String
    /// SQLite's extended result code, when SQLite reported the failure.
    public let sqliteResultCode: Int32?

    /// An error of `code` with a message for people.
    public init(_ code: Code, _ message: String, sqliteResultCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.sqliteResultCode = sqliteResultCode
    }

    public var description: String { message }
}

extension NotesError {
    /// A failed read of a file or standard input (``BoundedRead``) as a notes error.
    /// - Parameters:
    ///   - limit: the read's limit in bytes; `holder` what it is the limit of ("a note").
    ///   - consequence: what did not happen because of it ("nothing was saved").
    public init(_ error: FileReadError, limit: Int, holder: String, consequence: String) {
        switch error.code {
        case .tooLarge:
            let size = error.byteCount.map {
                "is \(ByteCount.format(Int($0))) but \(holder) holds at most \(ByteCount.format(limit))"
            } ?? "is larger than \(ByteCount.format(limit)), the most \(holder) holds"
            self.init(.tooLarge, "\(error.source) \(size); split it into smaller notes. \(Self.capitalized(consequence))")
        case .isDirectory, .notRegularFile, .cannotOpen, .cannotRead:
            self.init(.fileSystem, "\(error.message); \(consequence)")
        }
    }

    static func capitalized(_ text: String) -> String {
        text.prefix(1).uppercased() + text.dropFirst()
    }

    /// Turns an SQLite failure on the database at `path` into a message for people.
    ///
    /// - Parameter unsaved: what the failed write did not store ("note 12 was not saved"), or nil
    ///   when nothing was being written. A write always runs in one transaction that SQLite rolled
    ///   back, so the message can promise that what was stored before is intact.
    init(_ error: SQLiteError, path: String, unsaved: String?) {
        let outcome = unsaved.map { "; \($0) and nothing stored was lost" } ?? ""
        let code = error.code
        switch error.primaryCode {
        case SQLITE_FULL:
            self.init(.diskFull, "the disk is full\(outcome)", sqliteResultCode: code)
        case SQLITE_NOTADB:
            self.init(.notADatabase, "\(path) is not an SQLite database; it was left as it is", sqliteResultCode: code)
        case SQLITE_CORRUPT:
            self.init(.damaged, "\(path) is damaged (\(error.message))\(outcome)", sqliteResultCode: code)
        case SQLITE_BUSY, SQLITE_LOCKED:
            self.init(.busy, "\(path) is locked by another program that is writing to it\(outcome); try again when it is done",
                      sqliteResultCode: code)
        case SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM:
            self.init(.cannotWrite, "cannot write \(path): \(Self.accessProblem(path: path, sqliteMessage: error.message))\(outcome)",
                      sqliteResultCode: code)
        case SQLITE_IOERR:
            self.init(.database, "reading or writing \(path) failed (\(error.message))\(outcome)", sqliteResultCode: code)
        case SQLITE_TOOBIG:
            self.init(.tooLarge, "a value is larger than SQLite accepts\(outcome)", sqliteResultCode: code)
        default:
            self.init(.database, "SQLite error \(code) on \(path): \(error.message)\(outcome)", sqliteResultCode: code)
        }
    }

    /// Why `path` cannot be written, found by looking at the file system (`access`, `statvfs`).
    static func accessProblem(path: String, sqliteMessage: String) -> String {
        let directory = directoryOf(path)
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
            return "the directory \(directory) does not exist"
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return "it is a directory"
        }
        var fileSystem = statvfs()
        if statvfs(directory, &fileSystem) == 0, fileSystem.f_flag & UInt(ST_RDONLY) != 0 {
            return "the directory \(directory) is on a read-only file system"
        }
        if access(directory, W_OK) != 0 {
            return "the directory \(directory) is read-only"
        }
        if FileManager.default.fileExists(atPath: path), access(path, W_OK) != 0 {
            return "the file is read-only"
        }
        return sqliteMessage
    }

    /// The directory part of `path` ("." for a bare file name).
    static func directoryOf(_ path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }
}

/// Runs `body` and turns an SQLite failure into a ``NotesError`` about `path`, saying that
/// `unsaved` (nil for reads) did not happen.
func storing<Value>(path: String, unsaved: String?, _ body: () throws -> Value) throws(NotesError) -> Value {
    do {
        return try body()
    } catch let error as NotesError {
        throw error
    } catch let error as SQLiteError {
        throw NotesError(error, path: path, unsaved: unsaved)
    } catch {
        throw NotesError(.database, "\(error)")
    }
}
