import Foundation
import Testing
@testable import EmberModelCatalog

/// With EMBER_REQUIRE_MODELS=1 (as `make test` and CI set it) the real models must be cached and intact:
/// a missing or damaged file fails here rather than letting model tests skip.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBER_REQUIRE_MODELS"] == "1",
                "set EMBER_REQUIRE_MODELS=1 to require the real models"))
struct RequiredModelsTests {
    @Test(arguments: ModelCatalog.entries)
    func realModelIsCachedWithTheRightChecksum(entry: ModelEntry) throws {
        let directory = ModelCatalog.cacheDirectory
        let path = ModelCatalog.path(of: entry, in: directory)
        let stamp = try #require(
            FileChecksum.stamp(ofFileAt: path),
            "\(entry.name) is not in \(directory); run `ember models fetch \(entry.name)`")
        #expect(stamp.byteCount == entry.byteCount)
        // Read the whole file: the sidecar is a cache and is not what this test checks.
        #expect(try FileChecksum.sha256(ofFileAt: path, useSidecar: false) == entry.sha256)
        #expect(try ModelCatalog.resolve(entry.name, cacheDirectory: directory) == path)
    }
}
