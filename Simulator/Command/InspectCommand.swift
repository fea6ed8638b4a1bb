import ArgumentParser
import EmberCore
import EmberStorage
import Foundation

/// `ember inspect`: what a container holds, and (with --bench) how fast one core decodes it.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a container's header, tensor types and sizes; --bench measures decoding.",
        discussion: """
            --bench decodes the whole model on one thread with every check (zstd frames, stream sizes, \
            each chunk's XXH3-64) and reports original megabytes (10^6 bytes) per second of that \
            thread's CPU time, best of --repetitions. With --json it prints exactly \
            {"original_bytes","container_bytes","ratio","decode_mb_s_per_core"}, where ratio is \
            container_bytes / original_bytes.
            """)

    @Argument(help: "The container file.")
    var container: String

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Flag(name: .long, help: "Measure single-core decode speed.")
    var bench = false

    @Option(name: .long, help: "Decode runs for --bench; the fastest counts.")
    var repetitions: Int = 5

    @Flag(name: .long, help: "List every tensor (text output).")
    var tensors = false

    func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1.") }
    }

    func run() throws {
        let file = try ModelContainer(path: container)
        let header = file.header
        let ratio = Double(header.containerByteCount) / Double(max(header.ggufByteCount, 1))
        if bench {
            let speed = try file.measureDecodeSpeed(repetitions: repetitions)
            if json {
                print("{\"original_bytes\":\(header.ggufByteCount),\"container_bytes\":\(header.containerByteCount),"
                      + "\"ratio\":\(String(format: "%.6f", ratio)),\"decode_mb_s_per_core\":\(String(format: "%.1f", speed.megabytesPerSecond))}")
            } else {
                print("\(container): \(megabytes(header.ggufByteCount)) decoded on one core in \(String(format: "%.1f", speed.cpuSeconds * 1000)) ms CPU "
                      + "(best of \(repetitions)): \(String(format: "%.0f", speed.megabytesPerSecond)) MB/s per core; "
                      + "container \(String(format: "%.2f", ratio * 100)) % of the GGUF")
            }
            return
        }

        struct TypeRow {
            var tensors = 0
            var originalBytes = 0
            var storedBytes = 0
        }
        var rows: [String: TypeRow] = [:]
        var order: [String] = []
        func add(_ key: String, original: Int, stored: Int, tensor: Bool) {
            if rows[key] == nil { order.append(key) }
            rows[key, default: TypeRow()].originalBytes += original
            rows[key, default: TypeRow()].storedBytes += stored
            if tensor { rows[key, default: TypeRow()].tensors += 1 }
        }
        let remainderStored = file.chunks.filter { $0.tensor == nil }.reduce(0) { $0 + $1.compressedByteCount }
        add("header", original: file.remainderByteCount, stored: remainderStored, tensor: false)
        for tensor in file.tensors {
            let stored = file.chunks[tensor.chunks].reduce(0) { $0 + $1.compressedByteCount }
            add(tensor.type.name, original: tensor.byteCount, stored: stored, tensor: true)
        }
        let frames = header.dataFrameCount
        if json {
            let types = order.map { key in
                let row = rows[key]!
                return "{\"type\":\(JSONText.string(key)),\"tensors\":\(row.tensors),\"original_bytes\":\(row.originalBytes),\"stored_bytes\":\(row.storedBytes)}"
            }
            let tensorObjects = file.tensors.map { tensor in
                let stored = file.chunks[tensor.chunks].reduce(0) { $0 + $1.compressedByteCount }
                return "{\"name\":\(JSONText.string(tensor.name)),\"type\":\(JSONText.string(tensor.type.name)),"
                    + "\"gguf_offset\":\(tensor.ggufOffset),\"original_bytes\":\(tensor.byteCount),\"stored_bytes\":\(stored),"
                    + "\"first_chunk\":\(tensor.chunks.lowerBound),\"chunks\":\(tensor.chunks.count)}"
            }
            print("{\"format_version\":\(header.formatVersion),\"original_bytes\":\(header.ggufByteCount),"
                  + "\"container_bytes\":\(header.containerByteCount),\"ratio\":\(String(format: "%.6f", ratio)),"
                  + "\"sha256\":\(JSONText.string(header.ggufSHA256Hex)),\"tensor_count\":\(file.tensors.count),"
                  + "\"chunk_count\":\(file.chunks.count),\"frame_count\":\(frames),"
                  + "\"layouts\":[\(file.layouts.map { JSONText.string($0.description) }.joined(separator: ","))],"
                  + "\"types\":[\(types.joined(separator: ","))],\"tensors\":[\(tensorObjects.joined(separator: ","))]}")
            return
        }
        print("\(container): Ember container, format \(header.formatVersion)")
        print("  GGUF       \(header.ggufByteCount) bytes, sha256 \(header.ggufSHA256Hex)")
        print("  container  \(header.containerByteCount) bytes (\(String(format: "%.2f", ratio * 100)) % of the GGUF)")
        print("  \(file.tensors.count) tensors, \(file.chunks.count) chunks, \(frames) zstd frames")
        print("")
        print("  TYPE     TENSORS    ORIGINAL      STORED    STORED %")
        for key in order {
            let row = rows[key]!
            let percent = row.originalBytes > 0 ? Double(row.storedBytes) / Double(row.originalBytes) * 100 : 0
            print("  " + key.padding(toLength: 8, withPad: " ", startingAt: 0)
                  + String(format: " %7d %11d %11d %10.2f", row.tensors, row.originalBytes, row.storedBytes, percent))
        }
        if tensors {
            print("")
            for tensor in file.tensors {
                let stored = file.chunks[tensor.chunks].reduce(0) { $0 + $1.compressedByteCount }
                print("  \(tensor.name)  \(tensor.type)  \(tensor.byteCount) → \(stored) bytes, chunks \(tensor.chunks.lowerBound)..<\(tensor.chunks.upperBound)")
            }
        }
    }
}
