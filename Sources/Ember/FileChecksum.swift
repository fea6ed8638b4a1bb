import EmberCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// SHA-256 of files, streamed in chunks, with a `.sha256` sidecar so a file unchanged since its last
/// check is not read again.
///
/// The sidecar `FILE.sha256` holds one line, `HEX SIZE MTIME_NANOSECONDS`. It is trusted only while the
/// file's size and modification time are exactly those written in it.
public enum FileChecksum {
    /// Bytes read per `read(2)` call while hashing or copying.
    static let chunkByteCount = 4 << 20

    /// The size and modification time of a file, the key under which its checksum is cached.
    public struct Stamp: Sendable, Equatable {
        /// The size in bytes.
        public let byteCount: Int64
        /// The modification time in nanoseconds since 1970.
        public let modificationNanoseconds: Int64
    }

    /// The sidecar path for `path`.
    public static func sidecarPath(for path: String) -> String { path + ".sha256" }

    /// The size and modification time of the file at `path` (`stat(2)`), or nil when there is no such file.
    public static func stamp(ofFileAt path: String) -> Stamp? {
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        #if canImport(Darwin)
        let time = status.st_mtimespec
        #else
        let time = status.st_mtim
        #endif
        return Stamp(
            byteCount: Int64(status.st_size),
            modificationNanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    /// The checksum recorded in the sidecar, if the sidecar exists and still matches the file.
    public static func cachedSHA256(ofFileAt path: String) -> String? {
        guard let stamp = stamp(ofFileAt: path),
              let data = FileManager.default.contents(atPath: sidecarPath(for: path)),
              let text = String(data: data, encoding: .utf8)
        else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 3,
              fields[0].count == 64,
              Int64(fields[1]) == stamp.byteCount,
              Int64(fields[2]) == stamp.modificationNanoseconds
        else { return nil }
        return String(fields[0])
    }

    /// Records `hex` as the checksum of the file at `path` as it is now. A sidecar that cannot be written
    /// (a read-only directory) is skipped: it is only a cache.
    public static func recordSHA256(_ hex: String, ofFileAt path: String) {
        guard let stamp = stamp(ofFileAt: path) else { return }
        let line = "\(hex) \(stamp.byteCount) \(stamp.modificationNanoseconds)\n"
        try? Data(line.utf8).write(to: URL(fileURLWithPath: sidecarPath(for: path)), options: .atomic)
    }

    /// The SHA-256 of the file at `path`, from its sidecar when still valid, otherwise read in full (then
    /// recorded in the sidecar). `progress` receives bytes read so far and the total while reading.
    public static func sha256(
        ofFileAt path: String,
        useSidecar: Bool = true,
        progress: (_ bytesRead: Int64, _ totalBytes: Int64) -> Void = { _, _ in }
    ) throws(ModelCatalogError) -> String {
        if useSidecar, let cached = cachedSHA256(ofFileAt: path) { return cached }
        let before = stamp(ofFileAt: path)
        var hasher = SHA256()
        try copy(from: [path], to: nil, hasher: &hasher, progress: progress)
        let hex = SHA256.hexString(hasher.finalize())
        // Record only when the file did not change while it was read.
        if useSidecar, let before, before == stamp(ofFileAt: path) {
            recordSHA256(hex, ofFileAt: path)
        }
        return hex
    }

    /// Streams the files in `sources`, in order, through `hasher`, appending them to the already open
    /// `destination` descriptor when one is given.
    static func copy(
        from sources: [String],
        to destination: Int32?,
        hasher: inout SHA256,
        progress: (_ bytesDone: Int64, _ totalBytes: Int64) -> Void
    ) throws(ModelCatalogError) {
        let totalBytes = sources.reduce(Int64(0)) { $0 + (stamp(ofFileAt: $1)?.byteCount ?? 0) }
        var bytesDone: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkByteCount, alignment: 64)
        defer { buffer.deallocate() }
        for source in sources {
            let input = open(source, O_RDONLY)
            guard input >= 0 else {
                throw ModelCatalogError(.fileSystem, "cannot open \(source): \(systemErrorMessage())")
            }
            defer { close(input) }
            while true {
                let count = read(input, buffer.baseAddress, buffer.count)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw ModelCatalogError(.fileSystem, "cannot read \(source): \(systemErrorMessage())")
                }
                if count == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                hasher.update(chunk)
                if let destination { try writeAll(chunk, to: destination) }
                bytesDone += Int64(count)
                progress(bytesDone, totalBytes)
            }
        }
    }

    /// Writes every byte of `bytes` to `descriptor`, retrying short writes.
    static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) throws(ModelCatalogError) {
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw ModelCatalogError(.fileSystem, "cannot write the model file: \(systemErrorMessage())")
            }
            offset += written
        }
    }

    /// `strerror(errno)` as a Swift string.
    static func systemErrorMessage() -> String {
        String(cString: strerror(errno))
    }
}
