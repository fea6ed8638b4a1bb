import ArgumentParser
import EmberCore
import EmberStorage
import Foundation

/// `ember unpack`: write the GGUF a container holds, byte for byte.
struct UnpackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpack",
        abstract: "Write the GGUF file a container holds, byte for byte.",
        discussion: "Every chunk is checked while decoding, and the GGUF's SHA-256 must match the one recorded by `ember pack`; the file is written under a temporary name and renamed only then.")

    @Argument(help: "The container file.")
    var container: String

    @Option(name: .shortAndLong, help: "The GGUF file to write.")
    var output: String

    @Option(name: .long, help: "Decoding threads (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: "Replace --output if it already exists (never a device, a directory or the container itself).")
    var overwrite = false

    @Flag(name: .long, help: "Print one JSON object instead of a summary line.")
    var json = false

    func validate() throws {
        if let threads, threads < 1 || threads > 256 {
            throw ValidationError("--threads must be between 1 and 256, not \(threads).")
        }
    }

    func run() throws {
        try OutputFiles([("--output", output)], overwrite: overwrite).check(inputs: [container])
        let file = try ModelContainer(path: container)
        let bar = ProgressBar("unpacking")
        let start = MonotonicClock.nanoseconds()
        try file.reconstructGGUF(to: output, threads: threads ?? defaultThreadCount()) { done, total in bar.update(done, total) }
        bar.finish()
        let seconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
        if json {
            print("{\"output\":\(JSONText.string(output)),\"container\":\(JSONText.string(container)),"
                  + "\"bytes\":\(file.header.ggufByteCount),\"sha256\":\(JSONText.string(file.header.ggufSHA256Hex)),"
                  + "\"seconds\":\(String(format: "%.2f", seconds))}")
            return
        }
        print("\(output): \(file.header.ggufByteCount) bytes, sha256 \(file.header.ggufSHA256Hex) (checked), \(String(format: "%.2f s", seconds))")
    }
}
