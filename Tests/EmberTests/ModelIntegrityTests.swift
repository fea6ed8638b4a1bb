import EmberCore
import EmberKernels
import Foundation
import Testing
@testable import EmberModelCatalog
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A cached model is checked against its chunk hashes on every load: a flipped byte is found even when
/// the modification time is set back, and the message names the chunk and the command that repairs it.
struct ModelIntegrityTests {
    /// 3 MiB and 100 bytes: four chunks of the record's 1 MiB, each different.
    static let modelBytes = randomBytes(count: 3 * (1 << 20) + 100, seed: 11)

    /// Bytes from a seeded generator (SplitMix64): no period a chunk size would line up with.
    static func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return UInt8(truncatingIfNeeded: z ^ (z >> 31))
        }
    }

    /// A cache holding `tiny` whose content matches its entry, checked once so it has a chunk record.
    static func checkedCache() throws -> (TemporaryDirectory, ModelEntry, String) {
        let directory = try TemporaryDirectory()
        let entry = fakeEntry(pieces: [], expected: modelBytes)
        let file = try directory.write(entry.fileName, modelBytes)
        #expect(ModelCatalog.check(entry, in: directory.path) == .intact)
        return (directory, entry, file)
    }

    /// Flips one bit at `offset` and sets the modification time back to what it was, to the nanosecond
    /// (`utimensat(2)`).
    static func flipBit(in file: String, at offset: Int) throws {
        let before = try #require(FileChecksum.stamp(ofFileAt: file))
        var status = stat()
        #expect(stat(file, &status) == 0)
        let handle = try #require(FileHandle(forUpdatingAtPath: file))
        try handle.seek(toOffset: UInt64(offset))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: [byte ^ 0x10])
        try handle.close()
        #if canImport(Darwin)
        let times = [status.st_atimespec, status.st_mtimespec]
        #else
        let times = [status.st_atim, status.st_mtim]
        #endif
        #expect(utimensat(AT_FDCWD, file, times, 0) == 0)
        #expect(FileChecksum.stamp(ofFileAt: file) == before)
    }

    @Test("a flipped byte with the modification time restored is damaged, chunk named; the load is refused")
    func flippedByteIsFound() throws {
        let (directory, entry, file) = try Self.checkedCache()
        defer { directory.remove() }
        let record = try #require(FileChecksum.chunkRecord(ofFileAt: file))
        #expect(record.hashes.count == 4)
        #expect(record.sha256 == entry.sha256 && record.byteCount == entry.byteCount)
        // The SHA-256 sidecar alone would still vouch for it: same size, same time.
        #expect(FileChecksum.cachedSHA256(ofFileAt: file) == entry.sha256)

        try Self.flipBit(in: file, at: 2 * (1 << 20) + 12345)
        #expect(FileChecksum.cachedSHA256(ofFileAt: file) == entry.sha256, "the time was restored")
        #expect(ModelCatalog.check(entry, in: directory.path) == .damagedChunk(chunk: 3, chunkCount: 4))
        #expect(ModelCatalog.status(of: entry, in: directory.path) == .damaged)
        let error = #expect(throws: ModelCatalogError.self) {
            try ModelCatalog.resolve("tiny", cacheDirectory: directory.path, entries: [entry])
        }
        #expect(error?.code == .damagedModel)
        #expect(error?.message == "model 'tiny' is damaged (chunk 3 of 4): run `ember models fetch tiny`")
    }

    @Test("a cache without a chunk record gets one after its SHA-256 is checked; a wrong file gets none")
    func recordIsWrittenOnceFromTheSHA256() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let entry = fakeEntry(pieces: [], expected: Self.modelBytes)
        var wrong = Self.modelBytes
        wrong[10] ^= 1
        let file = try directory.write(entry.fileName, wrong)
        #expect(ModelCatalog.check(entry, in: directory.path) == .wrongChecksum)
        #expect(FileChecksum.chunkRecord(ofFileAt: file) == nil, "no record for a file that is not the catalog's")
        let error = #expect(throws: ModelCatalogError.self) {
            try ModelCatalog.resolve("tiny", cacheDirectory: directory.path, entries: [entry])
        }
        #expect(error?.message.hasPrefix("model 'tiny' is damaged (its SHA-256 is not the catalog's") == true)

        try directory.write(entry.fileName, Self.modelBytes)
        #expect(ModelCatalog.check(entry, in: directory.path) == .intact)
        let record = try #require(FileChecksum.chunkRecord(ofFileAt: file))
        let expected = (0..<4).map { chunk in
            XXH3.hash(Array(Self.modelBytes[(chunk << 20)..<min(Self.modelBytes.count, (chunk + 1) << 20)]))
        }
        #expect(record.hashes == expected)
    }

    @Test("a damaged chunk record costs one SHA-256 check and is rewritten; the model is not called damaged")
    func damagedRecordIsRepaired() throws {
        let (directory, entry, file) = try Self.checkedCache()
        defer { directory.remove() }
        let good = try #require(FileChecksum.chunkRecord(ofFileAt: file))
        var hashes = good.hashes
        hashes[1] ^= 0xFF
        FileChecksum.recordChunkHashes(
            ChunkHashes(sha256: good.sha256, byteCount: good.byteCount, chunkByteCount: good.chunkByteCount, hashes: hashes),
            ofFileAt: file)
        #expect(FileChecksum.chunkRecord(ofFileAt: file)?.hashes == hashes)
        // The file itself is unchanged, so this process would not read it again.
        ModelCatalog.forgetCheckedFiles()
        #expect(ModelCatalog.check(entry, in: directory.path) == .intact)
        #expect(FileChecksum.chunkRecord(ofFileAt: file) == good)

        // A record that is not one at all is ignored the same way.
        try Data("ember-chunk-hashes 1 xxh3-64\nnonsense\n".utf8).write(to: URL(fileURLWithPath: FileChecksum.chunkRecordPath(for: file)))
        #expect(FileChecksum.chunkRecord(ofFileAt: file) == nil)
        ModelCatalog.forgetCheckedFiles()
        #expect(ModelCatalog.check(entry, in: directory.path) == .intact)
        #expect(FileChecksum.chunkRecord(ofFileAt: file) == good)
    }

    @Test("sidecars that are endless devices are not read past a few KiB")
    func sidecarsAreReadBounded() throws {
        let (directory, entry, file) = try Self.checkedCache()
        defer { directory.remove() }
        for sidecar in [FileChecksum.chunkRecordPath(for: file), FileChecksum.sidecarPath(for: file)] {
            try FileManager.default.removeItem(atPath: sidecar)
            try FileManager.default.createSymbolicLink(atPath: sidecar, withDestinationPath: "/dev/zero")
        }
        #expect(FileChecksum.chunkRecord(ofFileAt: file) == nil)
        #expect(FileChecksum.cachedSHA256(ofFileAt: file) == nil)
        ModelCatalog.forgetCheckedFiles()
        // The content is still checked, through the SHA-256 (the new records replace the links, not /dev/zero).
        #expect(ModelCatalog.check(entry, in: directory.path) == .intact)
    }

    @Test("a fetch does not trust a restored modification time: the damaged file is replaced")
    func fetchReplacesADamagedFileWithTheSameTime() throws {
        let sources = try TemporaryDirectory()
        defer { sources.remove() }
        let (cache, entry, file) = try Self.checkedCache()
        defer { cache.remove() }
        let sourced = fakeEntry(pieces: [try sources.write("piece", Self.modelBytes)], expected: Self.modelBytes)
        try Self.flipBit(in: file, at: 100)
        var replaced = false
        let outcome = try ModelFetcher().fetch(sourced, into: cache.path) { event in
            if case .replacingDamaged = event { replaced = true }
        }
        #expect(replaced && outcome == .installed)
        #expect(FileManager.default.contents(atPath: file) == Data(Self.modelBytes))
        #expect(ModelCatalog.check(entry, in: cache.path) == .intact)
    }

    @Test("chunk records round-trip through their text; malformed ones are refused")
    func recordText() throws {
        let record = ChunkHashes(sha256: String(repeating: "Ab", count: 32), byteCount: 2_500_000, chunkByteCount: 1 << 20,
                                 hashes: [0, 0x0123_4567_89AB_CDEF, UInt64.max])
        #expect(record.sha256 == String(repeating: "ab", count: 32))
        #expect(ChunkHashes(recordText: record.recordText) == record)
        #expect(record.recordText.split(separator: "\n").last == "ffffffffffffffff")
        var missingLine = record.recordText.split(separator: "\n", omittingEmptySubsequences: false)
        missingLine.remove(at: 5)
        #expect(ChunkHashes(recordText: missingLine.joined(separator: "\n")) == nil, "three chunks need three hashes")
        #expect(ChunkHashes(recordText: record.recordText.replacingOccurrences(of: "chunk-bytes 1048576", with: "chunk-bytes 0")) == nil)
        #expect(ChunkHashes(recordText: record.recordText.replacingOccurrences(of: "xxh3-64", with: "crc32")) == nil)
        #expect(ChunkHashes(recordText: "") == nil)
    }

    @Test("chunk hashes are the same on one thread and on several")
    func threadCountDoesNotChangeTheHashes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write("model", Self.randomBytes(count: 5 * 65536 + 7, seed: 12))
        let one = try FileChecksum.chunkHashes(ofFileAt: file, chunkByteCount: 65536, threadCount: 1)
        let four = try FileChecksum.chunkHashes(ofFileAt: file, chunkByteCount: 65536, threadCount: 4)
        #expect(one.count == 6 && one == four)
        #expect(Set(one).count == 6)
    }
}
