import ArgumentParser
import EmberCore
import EmberStorage
import Foundation

/// `ember verify`: decode every chunk and check every checksum; name what is damaged.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a container: structure, every chunk's checksums, and the SHA-256 of the GGUF it rebuilds.",
        discussion: "Exits with status 1 when anything is damaged, naming each damaged chunk and its tensor.")

    @Argument(help: "The container file.")
    var container: String

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Option(name: .long, help: "Decoding threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 256 {
            throw ValidationError("--threads must be between 1 and 256, not \(threads).")
        }
    }

    static func errorJSON(_ error: StorageError) -> String {
        "{\"code\":\(JSONText.string(error.code.rawValue)),\"chunk\":\(error.chunk.map(String.init) ?? "null"),"
            + "\"tensor\":\(error.tensor.map(JSONText.string) ?? "null"),\"message\":\(JSONText.string(error.message))}"
    }

    func run() throws {
        let file: ModelContainer
        do {
            file = try ModelContainer(path: container)
        } catch {
            if json {
                print("{\"ok\":false,\"path\":\(JSONText.string(container)),\"errors\":[\(Self.errorJSON(error))]}")
            } else {
                printError("\(container): DAMAGED: \(error.message)")
            }
            throw ExitCode(1)
        }
        let bar = ProgressBar("verifying")
        let report = file.verify(threads: threads ?? defaultThreadCount()) { done, total in bar.update(done, total) }
        bar.finish()
        var errors = report.damagedChunks
        if report.damagedChunks.isEmpty, let computed = report.computedSHA256, computed != report.expectedSHA256 {
            errors.append(StorageError(.checksumMismatch, "every chunk is intact but the rebuilt GGUF has SHA-256 \(SHA256.hexString(computed)), not \(file.header.ggufSHA256Hex)"))
        }
        if json {
            print("{\"ok\":\(report.isIntact),\"path\":\(JSONText.string(container)),\"chunks\":\(report.chunkCount),"
                  + "\"tensors\":\(report.tensorCount),\"original_bytes\":\(report.ggufByteCount),"
                  + "\"container_bytes\":\(report.containerByteCount),\"sha256\":\(JSONText.string(file.header.ggufSHA256Hex)),"
                  + "\"errors\":[\(errors.map(Self.errorJSON).joined(separator: ","))]}")
        } else if report.isIntact {
            print("\(container): OK — \(report.chunkCount) chunks of \(report.tensorCount) tensors checked; GGUF sha256 \(file.header.ggufSHA256Hex) matches")
        } else {
            for error in errors { printError("\(container): DAMAGED: \(error.message)") }
        }
        if !report.isIntact { throw ExitCode(1) }
    }
}
