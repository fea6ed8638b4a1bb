import Foundation
import Testing
import EmberCore
@testable import EmberModelCatalog
import EmberCore

struct ModelFetcherTests {
    @Test func fetchConcatenatesPiecesVerifiesAndIsIdempotent() throws {
        let sources = try TemporaryDirectory()
        let cache = try TemporaryDirectory()
        defer { sources.remove(); cache.remove() }
        // Pieces larger than the copy chunk, so the streaming path crosses chunk boundaries.
        let first = patternBytes(count: FileChecksum.chunkByteCount + 17, seed: 2)
        let second = patternBytes(count: 4099, seed: 3)
        let entry = fakeEntry(
            pieces: [try sources.write("a.part00", first), try sources.write("a.part01", second)],
            expected: first + second)
        let source = CountingSource()
        let fetcher = ModelFetcher(source: source)

        var events: [String] = []
        let outcome = try fetcher.fetch(entry, into: cache.path) { events.append("\($0)") }
        #expect(outcome == .installed)
        #expect(source.callCount == 2)
        let installed = ModelCatalog.path(of: entry, in: cache.path)
        #expect(FileManager.default.contents(atPath: installed) == Data(first + second))
        #expect(cache.contents() == [entry.fileName, entry.fileName + ".chunks", entry.fileName + ".sha256"])
        #expect(FileChecksum.chunkRecord(ofFileAt: installed)?.hashes.count == 5, "4 MiB + 4116 bytes in 1 MiB chunks")
        #expect(ModelCatalog.status(of: entry, in: cache.path) == .verified)
        #expect(events.contains { $0.hasPrefix("installed") })
        // The local pieces are read, never moved.
        #expect(sources.contents() == ["a.part00", "a.part01"])

        let again = try fetcher.fetch(entry, into: cache.path)
        #expect(again == .alreadyPresent)
        #expect(source.callCount == 2)
    }

    @Test func checksumMismatchLeavesNoFileUnderAnyName() throws {
        let sources = try TemporaryDirectory()
        let cache = try TemporaryDirectory()
        defer { sources.remove(); cache.remove() }
        let bytes = patternBytes(count: 5000, seed: 4)
        let entry = fakeEntry(
            pieces: [try sources.write("piece", bytes)], expected: bytes,
            sha256: String(repeating: "0", count: 64))
        let error = #expect(throws: ModelCatalogError.self) {
            try ModelFetcher().fetch(entry, into: cache.path)
        }
        #expect(error?.code == .checksumMismatch)
        #expect(cache.contents().isEmpty, "left behind: \(cache.contents())")
        #expect(ModelCatalog.status(of: entry, in: cache.path) == .missing)
    }

    @Test func sizeMismatchIsRejected() throws {
        let sources = try TemporaryDirectory()
        let cache = try TemporaryDirectory()
        defer { sources.remove(); cache.remove() }
        let bytes = patternBytes(count: 100, seed: 5)
        // The expected hash and size are those of a longer file.
        let entry = fakeEntry(pieces: [try sources.write("piece", bytes)], expected: bytes + [0])
        #expect(throws: ModelCatalogError.self) { try ModelFetcher().fetch(entry, into: cache.path) }
        #expect(cache.contents().isEmpty)
    }

    @Test func failedSourceStepLeavesNoScratchFiles() throws {
        let cache = try TemporaryDirectory()
        defer { cache.remove() }
        let entry = fakeEntry(pieces: ["/nonexistent"], expected: [1])
        let error = #expect(throws: ModelCatalogError.self) {
            try ModelFetcher(source: FailingSource()).fetch(entry, into: cache.path)
        }
        #expect(error?.code == .downloadFailed)
        #expect(cache.contents().isEmpty)
    }

    @Test func damagedCachedFileIsReplaced() throws {
        let sources = try TemporaryDirectory()
        let cache = try TemporaryDirectory()
        defer { sources.remove(); cache.remove() }
        let bytes = patternBytes(count: 3000, seed: 6)
        let entry = fakeEntry(pieces: [try sources.write("piece", bytes)], expected: bytes)
        // Same size, different content: only the checksum can tell.
        var corrupted = bytes
        corrupted[1500] ^= 0xff
        try cache.write(entry.fileName, corrupted)

        var sawReplacement = false
        let outcome = try ModelFetcher().fetch(entry, into: cache.path) { event in
            if case .replacingDamaged = event { sawReplacement = true }
        }
        #expect(sawReplacement)
        #expect(outcome == .installed)
        #expect(FileManager.default.contents(atPath: ModelCatalog.path(of: entry, in: cache.path)) == Data(bytes))
    }

    @Test func sidecarIsIgnoredOnceTheFileChanges() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let original = patternBytes(count: 2048, seed: 7)
        let file = try directory.write("model.gguf", original)
        let hex = try FileChecksum.sha256(ofFileAt: file)
        #expect(hex == SHA256.hexString(SHA256.hash(original)))
        #expect(FileChecksum.cachedSHA256(ofFileAt: file) == hex)

        var changed = original
        changed[0] ^= 1
        try Data(changed).write(to: URL(fileURLWithPath: file))
        // Force a different modification time even on coarse-grained file systems.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000)], ofItemAtPath: file)
        #expect(FileChecksum.cachedSHA256(ofFileAt: file) == nil)
        #expect(try FileChecksum.sha256(ofFileAt: file) == SHA256.hexString(SHA256.hash(changed)))
    }
}

struct AbandonedScratchTests {
    @Test func scratchOfADeadFetchIsRemovedAndALiveOneIsKept() throws {
        let sources = try TemporaryDirectory()
        let cache = try TemporaryDirectory()
        defer { sources.remove(); cache.remove() }
        let bytes = patternBytes(count: 10, seed: 8)
        let entry = fakeEntry(pieces: [try sources.write("piece", bytes)], expected: bytes)
        // No process has this identifier (above Linux's and Darwin's limits).
        let dead = cache.file(".fetch-tiny-999999999-0000")
        let live = cache.file(".fetch-tiny-\(ProcessInfo.processInfo.processIdentifier)-1111")
        for directory in [dead, live] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try ModelFetcher().fetch(entry, into: cache.path)
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: live))
    }
}
