#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file or standard input given by a person could not be read; the message names the source
/// and says what to do. Callers add what did not happen because of it ("nothing was saved").
public struct FileReadError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure, for code that reacts to it.
    public enum Code: String, Sendable, Equatable {
        /// The source holds more bytes than the caller accepts (or never ends, like `/dev/zero`).
        case tooLarge
        /// The path names a directory.
        case isDirectory
        /// The path names something that is not a regular file where only one is accepted (a FIFO,
        /// a socket, a device).
        case notRegularFile
        /// `open(2)` failed: no such file, no permission.
        case cannotOpen
        /// `read(2)` failed.
        case cannotRead
    }

    /// The kind of failure.
    public let code: Code
    /// The path, or "standard input".
    public let source: String
    /// One line for a person.
    public let message: String
    /// The source's size, when known (a regular file refused as too large from its size).
    public let byteCount: Int64?

    public init(_ code: Code, source: String, _ message: String, byteCount: Int64? = nil) {
        self.code = code
        self.source = source
        self.message = message
        self.byteCount = byteCount
    }

    public var description: String { message }
}

/// Reads files and standard input given by a person, never more than a limit: `limit + 1` bytes at
/// most are read, so `yes |`, `/dev/zero` or a 10 GB file is refused after a bounded read, with memory
/// bounded by the limit. A regular file larger than the limit is refused from its size, unread.
///
/// ```swift
/// let body = try BoundedRead.file(atPath: path, limit: 2 << 20)   // [UInt8], at most 2 MiB
/// let text = try BoundedRead.standardInput(limit: 2 << 20)
/// ```
public enum BoundedRead {
    /// What a path may name besides a regular file.
    public enum Streams: Sendable {
        /// Pipes, FIFOs and character devices are read like files (`--body-file /dev/stdin`, `<(cmd)`);
        /// a FIFO with no writer waits for one, as `cat` does.
        case allowed
        /// Only regular files: a FIFO (which could wait forever) or a device is refused without opening it.
        /// For files found by listing a directory rather than named by the person.
        case refused
    }

    /// Bytes asked of each `read(2)`.
    static let readByteCount = 64 << 10

    /// The bytes of the file at `path` (`open(2)`, `fstat(2)`, `read(2)`), at most `limit` of them.
    /// - Throws: ``FileReadError`` when the path is missing, a directory, unreadable, or holds more than `limit` bytes.
    public static func file(atPath path: String, limit: Int, streams: Streams = .allowed) throws(FileReadError) -> [UInt8] {
        var status = stat()
        if stat(path, &status) == 0 {
            let kind = status.st_mode & S_IFMT
            if kind == S_IFDIR {
                throw FileReadError(.isDirectory, source: path, "\(path) is a directory, not a file")
            }
            if kind != S_IFREG, streams == .refused {
                throw FileReadError(.notRegularFile, source: path, "\(path) is not a regular file")
            }
        }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw FileReadError(.cannotOpen, source: path, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        return try read(descriptor: descriptor, limit: limit, source: path)
    }

    /// The bytes of standard input up to its end, at most `limit` of them.
    public static func standardInput(limit: Int) throws(FileReadError) -> [UInt8] {
        try read(descriptor: STDIN_FILENO, limit: limit, source: "standard input")
    }

    /// Reads `descriptor` to its end, at most `limit` bytes; `source` names it in errors.
    /// The descriptor is neither closed nor rewound.
    public static func read(descriptor: Int32, limit: Int, source: String) throws(FileReadError) -> [UInt8] {
        precondition(limit >= 0, "a read limit is a byte count")
        var status = stat()
        if fstat(descriptor, &status) == 0 {
            let kind = status.st_mode & S_IFMT
            if kind == S_IFDIR {
                throw FileReadError(.isDirectory, source: source, "\(source) is a directory, not a file")
            }
            if kind == S_IFREG, Int64(status.st_size) > Int64(limit) {
                throw FileReadError(
                    .tooLarge, source: source,
                    "\(source) is \(ByteCount.format(Int(status.st_size))), more than the \(ByteCount.format(limit)) accepted here",
                    byteCount: Int64(status.st_size))
            }
        }
        var bytes: [UInt8] = []
        // One byte more than the limit tells a source of exactly `limit` bytes from a larger one.
        let ceiling = limit + 1
        while bytes.count < ceiling {
            let want = min(readByteCount, ceiling - bytes.count)
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: want))
            let count = bytes.withUnsafeMutableBytes { buffer in
                systemRead(descriptor, buffer.baseAddress! + start, want)
            }
            if count < 0 {
                bytes.removeLast(want)
                if errno == EINTR { continue }
                if errno == EISDIR {
                    throw FileReadError(.isDirectory, source: source, "\(source) is a directory, not a file")
                }
                throw FileReadError(.cannotRead, source: source, "cannot read \(source): \(String(cString: strerror(errno)))")
            }
            bytes.removeLast(want - count)
            if count == 0 { break }
        }
        guard bytes.count <= limit else {
            throw FileReadError(.tooLarge, source: source, "\(source) holds more than the \(ByteCount.format(limit)) accepted here")
        }
        return bytes
    }

    @inline(__always)
    private static func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        #if canImport(Darwin)
        Darwin.read(descriptor, buffer, count)
        #elseif canImport(Musl)
        Musl.read(descriptor, buffer, count)
        #else
        Glibc.read(descriptor, buffer, count)
        #endif
    }
}
