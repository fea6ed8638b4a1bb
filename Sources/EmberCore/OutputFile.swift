#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an output file could not be written, or may not be.
public struct OutputFileError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The target exists and is not a regular file (a device, directory, fifo or socket).
        case notRegularFile
        /// The target is one of the command's own inputs.
        case sameAsInput
        /// The target exists and overwriting was not asked for.
        case exists
        /// The file system refused: create, write, flush or rename failed.
        case io
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// A file being written under a temporary name beside its destination (same directory, a name no
/// other writer uses), renamed into place by ``commit()`` after `fsync`: a half-written file never
/// carries the final name, and the temporary file is removed when the writer is dropped uncommitted.
///
/// Whether the destination may be replaced at all is ``OutputPolicy``'s question, asked first.
public final class AtomicOutputFile {
    public let path: String
    public let temporaryPath: String
    /// The open temporary file (`-1` after ``commit()``).
    public private(set) var descriptor: Int32
    private var committed = false

    private static let counter = Counter()

    /// Creates the temporary file (`open(O_CREAT | O_EXCL)`, mode 0644); refuses a `path` that is a
    /// device, directory, fifo or socket.
    public init(path: String) throws(OutputFileError) {
        try Self.refuseSpecialFile(path)
        self.path = path
        var attempt = 0
        while true {
            let candidate = path + ".partial-\(getpid())-\(Self.counter.next())"
            let opened = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if opened >= 0 {
                temporaryPath = candidate
                descriptor = opened
                return
            }
            attempt += 1
            if errno != EEXIST || attempt >= 100 {
                throw OutputFileError(.io, "cannot create \(candidate): \(Self.systemError())")
            }
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if !committed { unlink(temporaryPath) }
    }

    /// Writes every byte of `bytes` at `offset` (`pwrite`, retrying short and interrupted writes).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(OutputFileError) {
        var done = 0
        while done < bytes.count {
            let written = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if written < 0 {
                if errno == EINTR { continue }
                throw OutputFileError(.io, "cannot write \(temporaryPath): \(Self.systemError())")
            }
            done += written
        }
    }

    public func write(_ bytes: [UInt8], at offset: Int) throws(OutputFileError) {
        var failure: OutputFileError?
        bytes.withUnsafeBytes { buffer in
            do throws(OutputFileError) { try write(buffer, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Flushes the file to disk (`fsync`) and renames it to its final name (`rename`). A final name
    /// that is a device, directory, fifo or socket (also behind a symlink) is never replaced.
    public func commit() throws(OutputFileError) {
        try Self.refuseSpecialFile(path)
        guard fsync(descriptor) == 0 else {
            throw OutputFileError(.io, "cannot flush \(temporaryPath) to disk: \(Self.systemError())")
        }
        close(descriptor)
        descriptor = -1
        guard rename(temporaryPath, path) == 0 else {
            throw OutputFileError(.io, "cannot rename \(temporaryPath) to \(path): \(Self.systemError())")
        }
        committed = true
    }

    /// Writes `text` as UTF-8 to `path` through a temporary file and a rename.
    public static func write(_ text: String, to path: String) throws(OutputFileError) {
        let file = try AtomicOutputFile(path: path)
        try file.write(Array(text.utf8), at: 0)
        try file.commit()
    }

    /// Throws when `path` exists (following symlinks) and is not a regular file.
    static func refuseSpecialFile(_ path: String) throws(OutputFileError) {
        var target = stat()
        if stat(path, &target) == 0, target.st_mode & S_IFMT != S_IFREG {
            throw OutputFileError(.notRegularFile, "\(path) is \(OutputPolicy.describe(target.st_mode & S_IFMT)), not a regular file; nothing was written")
        }
    }

    static func systemError() -> String { String(cString: strerror(errno)) }

    /// Temporary-name numbers unique within the process.
    private final class Counter: @unchecked Sendable {
        // Invariant: `value` is only read and changed while `lock` is held.
        private var value = 0
        private var lock = pthread_mutex_t()
        init() { pthread_mutex_init(&lock, nil) }
        func next() -> Int {
            pthread_mutex_lock(&lock)
            defer { pthread_mutex_unlock(&lock) }
            value += 1
            return value
        }
    }
}

/// The rules a command's output file must pass before anything is written: it must not be a
/// device, directory, fifo or socket (also behind a symlink), must not be one of the command's
/// inputs (the same device and inode, also through symlinks and hard links), and must not exist
/// unless the caller asked to overwrite it.
public enum OutputPolicy {
    /// Throws when `path` may not be written; `option` names the option in the message (`--output`).
    public static func check(_ path: String, option: String = "--output", inputs: [String] = [],
                             overwrite: Bool) throws(OutputFileError) {
        var target = stat()
        guard stat(path, &target) == 0 else { return }  // nothing there (or a dangling symlink): a new file
        let type = target.st_mode & S_IFMT
        guard type == S_IFREG else {
            throw OutputFileError(.notRegularFile, "\(option) \(path) is \(describe(type)), not a regular file; nothing was written")
        }
        for input in inputs {
            var source = stat()
            if stat(input, &source) == 0, source.st_dev == target.st_dev, source.st_ino == target.st_ino {
                throw OutputFileError(.sameAsInput, "\(option) \(path) is the input \(input); write to another file")
            }
        }
        guard overwrite else {
            throw OutputFileError(.exists, "\(option) \(path) already exists; pass --overwrite to replace it")
        }
    }

    static func describe(_ type: mode_t) -> String {
        switch type {
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFDIR: "a directory"
        case S_IFIFO: "a fifo"
        case S_IFSOCK: "a socket"
        default: "a special file"
        }
    }
}
