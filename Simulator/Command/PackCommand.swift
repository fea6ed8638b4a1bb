import ArgumentParser
import Ember
import EmberModelCatalog
import EmberCore
import EmberStorage
import Foundation

/// `ember pack`: compress a GGUF model into a seekable, checksummed container (docs/FORMAT.md);
/// `ember pack diff` and `ember pack rebuild` make and apply updates between two containers.
struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Compress a GGUF model into an Ember container (.ggz); diff and rebuild updates.",
        discussion: """
            Tensors are cut into chunks of whole quant blocks; each chunk's blocks are split into byte \
            streams (scales apart from quants) and each stream becomes one zstd frame. `ember unpack` \
            gives back the GGUF byte for byte. `ember pack --model M --output FILE` runs `pack create`.
            """,
        subcommands: [Create.self, Diff.self, Rebuild.self],
        defaultSubcommand: Create.self)
}

extension PackCommand {
    /// `ember pack [create] --model M --output FILE`.
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compress a GGUF model into a container (the default of `ember pack`).")

        @Option(name: .long, help: "A model alias (smollm2, gemma3) or the path of a GGUF file.")
        var model: String

        @Option(name: .shortAndLong, help: "The container file to write.")
        var output: String

        @Option(name: .long, help: "zstd level of metadata and scale streams, 1-19 (quant payloads use at most \(ContainerWriter.payloadLevelLimit)).")
        var level: Int = ContainerWriter.defaultLevel

        @Option(name: .long, help: "Original bytes per chunk, e.g. 1MiB or 256KiB.")
        var chunkSize: String = "1MiB"

        @Option(name: .long, help: "Store a stream raw when zstd saves less than this percentage of it (it would decode slowly for little gain).")
        var rawBelow: Double = ContainerWriter.defaultRawBelowGain * 100

        @Option(name: .long, help: "Compression threads (default: all cores).")
        var threads: Int?

        @Flag(name: .long, help: "Print one JSON object instead of a summary line.")
        var json = false

        @Flag(name: .long, help: "Replace --output if it already exists (never a device, a directory or the model itself).")
        var overwrite = false

        func validate() throws {
            guard (1...19).contains(level) else { throw ValidationError("--level must be between 1 and 19, not \(level).") }
            guard let bytes = ByteCount.parse(chunkSize), bytes >= 1, bytes <= ContainerFormat.maximumChunkByteCount else {
                throw ValidationError("--chunk-size takes a size from 1 byte to 64MiB, like 1MiB or 256KiB; '\(chunkSize)' is not one.")
            }
            if let threads, threads < 1 || threads > 256 {
                throw ValidationError("--threads must be between 1 and 256, not \(threads).")
            }
            guard rawBelow >= 0, rawBelow <= 100 else { throw ValidationError("--raw-below is a percentage from 0 to 100, not \(rawBelow).") }
        }

        func run() throws {
            let path = try ModelCatalog.resolve(model)
            try OutputFiles([("--output", output)], overwrite: overwrite).check(inputs: [path])
            let writer = ContainerWriter(level: level, chunkByteCount: ByteCount.parse(chunkSize)!, threads: threads ?? defaultThreadCount(),
                                         rawBelowGain: rawBelow / 100)
            let bar = ProgressBar("packing")
            let start = MonotonicClock.nanoseconds()
            let summary = try writer.pack(ggufPath: path, to: output) { done, total in bar.update(done, total) }
            bar.finish()
            let seconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
            let ratio = Double(summary.containerByteCount) / Double(summary.ggufByteCount)
            if json {
                print("{\"output\":\(JSONText.string(output)),\"original_bytes\":\(summary.ggufByteCount),"
                      + "\"container_bytes\":\(summary.containerByteCount),\"ratio\":\(String(format: "%.6f", ratio)),"
                      + "\"tensors\":\(summary.tensorCount),\"chunks\":\(summary.chunkCount),"
                      + "\"sha256\":\(JSONText.string(SHA256.hexString(summary.ggufSHA256))),\"seconds\":\(String(format: "%.2f", seconds))}")
            } else {
                print("\(output): \(megabytes(summary.ggufByteCount)) → \(megabytes(summary.containerByteCount)) "
                      + "(\(String(format: "%.2f", ratio * 100)) % of the GGUF), \(summary.tensorCount) tensors in \(summary.chunkCount) chunks, "
                      + String(format: "%.1f s", seconds))
            }
        }
    }
}

extension PackCommand {
    /// `ember pack diff OLD NEW`: the chunks an update from OLD to NEW must carry.
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the chunks of NEW that OLD lacks; with --output, write them as a patch.",
            discussion: "Apply the patch with `ember pack rebuild OLD PATCH --output NEW`.")

        @Argument(help: "The container an update starts from.")
        var old: String

        @Argument(help: "The container it should become.")
        var new: String

        @Option(name: .shortAndLong, help: "Write a patch (new index and changed chunks) to this file.")
        var output: String?

        @Flag(name: .long, help: "Print one JSON object.")
        var json = false

        @Flag(name: .long, help: "Replace --output if it already exists (never a device, a directory or an input).")
        var overwrite = false

        func run() throws {
            try OutputFiles([("--output", output)], overwrite: overwrite).check(inputs: [old, new])
            let oldContainer = try ModelContainer(path: old)
            let newContainer = try ModelContainer(path: new)
            let diff = ContainerDiff(old: oldContainer, new: newContainer)
            if let output {
                try ContainerPatch.write(from: oldContainer, to: newContainer, diff: diff, path: output)
            }
            let changedBytes = diff.changed.reduce(0) { $0 + $1.compressedByteCount }
            if json {
                let chunks = diff.changed.map { chunk in
                    "{\"chunk\":\(chunk.index),\"tensor\":\(chunk.tensor.map(JSONText.string) ?? "null"),"
                        + "\"original_bytes\":\(chunk.byteCount),\"stored_bytes\":\(chunk.compressedByteCount)}"
                }
                print("{\"old\":\(JSONText.string(old)),\"new\":\(JSONText.string(new)),\"new_chunks\":\(diff.newChunkCount),"
                      + "\"changed_chunks\":\(diff.changed.count),\"reused_chunks\":\(diff.reused.count),"
                      + "\"changed_stored_bytes\":\(changedBytes),\"patch_bytes\":\(diff.patchByteCount),"
                      + "\"new_container_bytes\":\(diff.newContainerByteCount),"
                      + "\"changed_tensors\":[\(diff.changedTensors.map(JSONText.string).joined(separator: ","))],"
                      + "\"chunks\":[\(chunks.joined(separator: ","))]}")
                return
            }
            for chunk in diff.changed {
                print("chunk \(chunk.index)\t\(chunk.tensor ?? "(GGUF header and padding)")\t\(chunk.compressedByteCount) bytes")
            }
            print("\(diff.changed.count) of \(diff.newChunkCount) chunks changed (\(megabytes(changedBytes)) of \(megabytes(diff.newContainerByteCount))); "
                  + "a patch is \(megabytes(diff.patchByteCount))" + (output.map { ", written to \($0)" } ?? ""))
        }
    }

    /// `ember pack rebuild OLD PATCH --output NEW`: apply a patch made by `ember pack diff`.
    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild a new container from an old one and a patch made by `ember pack diff --output`.",
            discussion: "Every chunk is checked before it is written; the result is decoded and its GGUF SHA-256 checked unless --no-verify.")

        @Argument(help: "The container the patch starts from.")
        var old: String

        @Argument(help: "The patch file.")
        var patch: String

        @Option(name: .shortAndLong, help: "The container to write.")
        var output: String

        @Flag(name: .long, inversion: .prefixedNo, help: "Decode the result and check its SHA-256 before keeping it.")
        var verify = true

        @Flag(name: .long, help: "Replace --output if it already exists (never a device, a directory or an input).")
        var overwrite = false

        @Flag(name: .long, help: "Print one JSON object instead of a summary line.")
        var json = false

        func run() throws {
            try OutputFiles([("--output", output)], overwrite: overwrite).check(inputs: [old, patch])
            let oldContainer = try ModelContainer(path: old)
            let bar = ProgressBar("rebuilding")
            try ContainerPatch.apply(old: oldContainer, patchPath: patch, outputPath: output, verify: verify) { done, total in
                bar.update(done, total)
            }
            bar.finish()
            if json {
                let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? nil
                print("{\"output\":\(JSONText.string(output)),\"old\":\(JSONText.string(old)),\"patch\":\(JSONText.string(patch)),"
                      + "\"container_bytes\":\(bytes.map(String.init) ?? "null"),\"verified\":\(verify)}")
                return
            }
            print("\(output): rebuilt from \(old) and \(patch)" + (verify ? ", verified" : ""))
        }
    }
}
