import Foundation
import EmberCore
@testable import EmberModelCatalog
import EmberCore

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("ember-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    func contents() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Deterministic bytes of any length, so each test's fake model differs.
func patternBytes(count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}

/// A catalog entry whose pieces are local files, so fetching needs no network.
func fakeEntry(name: String = "tiny", pieces: [String], expected: [UInt8], sha256: String? = nil) -> ModelEntry {
    ModelEntry(
        name: name,
        summary: "a fake model for tests",
        fileName: "\(name).gguf",
        byteCount: Int64(expected.count),
        sha256: sha256 ?? SHA256.hexString(SHA256.hash(expected)),
        parts: pieces.map { .localFile(path: $0) })
}

/// Wraps a source step and counts how often it was asked for a piece.
///
/// `@unchecked Sendable`: the count is only touched under `lock`.
final class CountingSource: ModelPartSource, @unchecked Sendable {
    private let lock = NSLock()
    private var calls = 0
    private let inner: any ModelPartSource

    init(_ inner: any ModelPartSource = StandardModelPartSource()) { self.inner = inner }

    var callCount: Int { lock.withLock { calls } }

    func provide(_ part: ModelPart, scratchDirectory: String) throws(ModelCatalogError) -> String {
        lock.withLock { calls += 1 }
        return try inner.provide(part, scratchDirectory: scratchDirectory)
    }
}

/// A source step that writes a piece into the scratch directory, then fails: a download cut off midway.
struct FailingSource: ModelPartSource {
    func provide(_ part: ModelPart, scratchDirectory: String) throws(ModelCatalogError) -> String {
        let partial = (scratchDirectory as NSString).appendingPathComponent("partial-piece")
        _ = FileManager.default.createFile(atPath: partial, contents: Data([1, 2, 3]))
        throw ModelCatalogError(.downloadFailed, "connection reset")
    }
}
