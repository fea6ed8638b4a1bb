import EmberCore
import EmberKernels
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// SHA-256 of files, streamed in chunks, with a `.sha256` sidecar so a file unchanged since its last
/// check is not read again; and per-chunk XXH3-64 hashes (``ChunkHashes``, in a `.chunks` sidecar) that
/// check a cached model's content on every load at a small fraction of the load's cost.
///
/// The sidecar `FILE.sha256` holds one line, `HEX SIZE MTIME_NANOSECONDS`. It is trusted only while the
/// file's size and modification time are exactly those written in it — which a restored modification
/// time fools, so loading a catalog model checks the chunk hashes instead.
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
              let bytes = try? BoundedRead.file(atPath: sidecarPath(for: path), limit: 4096, streams: .refused)
        else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
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

    // MARK: Chunk hashes

    /// Bytes per hashed chunk in records this version writes (records say their own size).
    public static let chunkHashByteCount = 1 << 20

    /// The chunk record's path for `path`.
    public static func chunkRecordPath(for path: String) -> String { path + ".chunks" }

    /// The chunk record next to `path`, or nil when there is none or it cannot be parsed.
    public static func chunkRecord(ofFileAt path: String) -> ChunkHashes? {
        // A record holds 17 bytes per chunk: 64 KiB of hashes per GiB of model at the default size.
        guard let bytes = try? BoundedRead.file(atPath: chunkRecordPath(for: path), limit: 16 << 20, streams: .refused) else {
            return nil
        }
        return ChunkHashes(recordText: String(decoding: bytes, as: UTF8.self))
    }

    /// Writes `record` next to `path`, atomically. A record that cannot be written (a read-only cache) is
    /// skipped: the next load computes it again.
    public static func recordChunkHashes(_ record: ChunkHashes, ofFileAt path: String) {
        try? Data(record.recordText.utf8).write(to: URL(fileURLWithPath: chunkRecordPath(for: path)), options: .atomic)
    }

    /// The XXH3-64 of each `chunkByteCount`-byte chunk of the file at `path` (the last may be shorter),
    /// read with `pread(2)` into one chunk-sized buffer per thread, so memory stays at a few MiB and the
    /// file's pages are not mapped (a lazily mapped model's resident size is unchanged).
    public static func chunkHashes(
        ofFileAt path: String,
        chunkByteCount: Int = chunkHashByteCount,
        threadCount: Int = min(4, ProcessInfo.processInfo.activeProcessorCount)
    ) throws(ModelCatalogError) -> [UInt64] {
        precondition(chunkByteCount > 0)
        guard let stamp = stamp(ofFileAt: path) else {
            throw ModelCatalogError(.fileSystem, "cannot read \(path): it is missing or not a regular file")
        }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ModelCatalogError(.fileSystem, "cannot open \(path): \(systemErrorMessage())")
        }
        defer { close(descriptor) }
        let byteCount = Int(stamp.byteCount)
        let chunkCount = (byteCount + chunkByteCount - 1) / chunkByteCount
        var hashes = [UInt64](repeating: 0, count: chunkCount)
        let threads = max(1, min(threadCount, chunkCount))
        var failures = [String?](repeating: nil, count: threads)
        let pool = ThreadPool(threadCount: threads)
        hashes.withUnsafeMutableBufferPointer { hashes in
            failures.withUnsafeMutableBufferPointer { failures in
                pool.parallelFor(chunkCount) { chunks, thread in
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkByteCount, alignment: 64)
                    defer { buffer.deallocate() }
                    for chunk in chunks {
                        let offset = chunk * chunkByteCount
                        let length = min(chunkByteCount, byteCount - offset)
                        guard readFully(descriptor, into: buffer.baseAddress!, count: length, at: offset) else {
                            failures[thread] = "cannot read \(path): \(errno == 0 ? "the file is shorter than it was" : systemErrorMessage())"
                            return
                        }
                        hashes[chunk] = XXH3.hash(UnsafeRawBufferPointer(start: buffer.baseAddress, count: length))
                    }
                }
            }
        }
        if let failure = failures.compactMap({ $0 }).first { throw ModelCatalogError(.fileSystem, failure) }
        return hashes
    }

    /// `pread(2)` until `count` bytes are in `buffer`; false on an error or an early end of file.
    private static func readFully(_ descriptor: Int32, into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) -> Bool {
        var done = 0
        while done < count {
            let got = pread(descriptor, buffer + done, count - done, off_t(offset + done))
            if got < 0 {
                if errno == EINTR { continue }
                return false
            }
            if got == 0 {
                errno = 0
                return false
            }
            done += got
        }
        return true
    }

    /// `strerror(errno)` as a Swift string.
    static func systemErrorMessage() -> String {
        String(cString: strerror(errno))
    }
}


/// The XXH3-64 of every chunk of a model file, taken from a file whose SHA-256 was checked: what a load
/// compares the file with to find damage (a flipped bit, a truncated copy) in a small fraction of the
/// load's time. A `.chunks` sidecar holds it as text:
///
/// ```
/// ember-chunk-hashes 1 xxh3-64
/// sha256 b179c952…
/// bytes 98362432
/// chunk-bytes 1048576
/// 9f0c4e2a11d3b6e7
/// …one line of 16 hex digits per chunk
/// ```
public struct ChunkHashes: Sendable, Equatable {
    /// The SHA-256 of the whole file the hashes were taken from.
    public let sha256: String
    /// The file's size in bytes.
    public let byteCount: Int64
    /// Bytes per chunk; the last chunk holds the rest.
    public let chunkByteCount: Int
    /// One XXH3-64 per chunk, in file order.
    public let hashes: [UInt64]

    public init(sha256: String, byteCount: Int64, chunkByteCount: Int, hashes: [UInt64]) {
        self.sha256 = sha256.lowercased()
        self.byteCount = byteCount
        self.chunkByteCount = chunkByteCount
        self.hashes = hashes
    }

    /// Parses a record; nil when it is not one this version understands or does not add up.
    init?(recordText text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 4, lines[0] == "ember-chunk-hashes 1 xxh3-64",
              lines[1].hasPrefix("sha256 "), lines[1].count == 7 + 64,
              lines[2].hasPrefix("bytes "), let byteCount = Int64(lines[2].dropFirst(6)), byteCount >= 0,
              lines[3].hasPrefix("chunk-bytes "), let chunkByteCount = Int(lines[3].dropFirst(12)), chunkByteCount > 0
        else { return nil }
        var hashes: [UInt64] = []
        for line in lines.dropFirst(4) where !line.isEmpty {
            guard line.count == 16, let hash = UInt64(line, radix: 16) else { return nil }
            hashes.append(hash)
        }
        guard Int64(hashes.count) == (byteCount + Int64(chunkByteCount) - 1) / Int64(chunkByteCount) else { return nil }
        self.init(sha256: String(lines[1].dropFirst(7)), byteCount: byteCount, chunkByteCount: chunkByteCount, hashes: hashes)
    }

    /// The record as the `.chunks` sidecar holds it.
    var recordText: String {
        var text = "ember-chunk-hashes 1 xxh3-64\nsha256 \(sha256)\nbytes \(byteCount)\nchunk-bytes \(chunkByteCount)\n"
        for hash in hashes {
            let hex = String(hash, radix: 16)
            text += String(repeating: "0", count: 16 - hex.count) + hex + "\n"
        }
        return text
    }
}
