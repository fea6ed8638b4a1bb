import ArgumentParser
import EmberCore
import EmberGGUF
import EmberKernels
import EmberModelCatalog
import Foundation

/// `ember convert`: rewrites a GGUF model with its quantized weight matrices widened to F16 or F32
/// (what llama.cpp's BLAS backend multiplies), metadata and the other tensors unchanged. Used to
/// measure prompt processing over unquantized weights (BENCHMARKS.md, OpenBLAS).
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a GGUF model with its quantized weights widened to f16 or f32.",
        discussion: """
            Every tensor of a quantized type is dequantized (Ember's scalar reference) and stored as --type; \
            F32 and F16 tensors and all metadata are copied, and general.file_type is set. The file is \
            written beside --output and renamed; an existing file is replaced only with --overwrite.
            """)

    @Option(name: .long, help: "A model alias (smollm2, gemma3) or the path of a GGUF file.")
    var model: String

    @Option(name: .long, help: "The type of the widened weights: f16 or f32.")
    var type: String = "f16"

    @Option(name: .long, help: "The GGUF file to write.")
    var output: String

    @Flag(name: .long, help: "Replace --output if it exists.")
    var overwrite = false

    /// llama.cpp's `llama_ftype` of the whole file.
    static let fileTypes: [String: (type: TensorType, fileType: UInt32)] = ["f32": (.f32, 0), "f16": (.f16, 1)]

    /// Types Ember's scalar reference widens (`ReferenceKernels.dequantize`).
    static let widenable: Set<TensorType> = [.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .q8_K, .q4_K, .q5_K, .q6_K]

    func validate() throws {
        guard Self.fileTypes[type] != nil else { throw ValidationError("--type must be f16 or f32, not '\(type)'.") }
    }

    func run() throws {
        let (target, fileType) = Self.fileTypes[type]!
        let path = try ModelCatalog.resolve(model)
        try OutputFiles([("--output", output)], overwrite: overwrite).check(inputs: [path])
        let file = try GGUFFile(path: path)
        var writer = GGUFWriter(version: file.version, alignment: file.alignment)
        for key in file.metadataKeys where key != "general.alignment" {
            if let value = file.metadata[key] { writer.set(key, value) }
        }
        writer.set("general.file_type", GGUFValue.uint32(fileType))
        // Every tensor checked before any is widened: one line naming the first Ember cannot widen.
        if let tensor = file.tensors.first(where: { $0.type != .f32 && $0.type != target && !Self.widenable.contains($0.type) }) {
            throw ValidationError("\(path): tensor '\(tensor.name)' is \(tensor.type), which ember convert cannot widen.")
        }
        var widened = 0
        for tensor in file.tensors {
            if tensor.type == .f32 || tensor.type == target {
                writer.addTensor(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type,
                                 data: file.withTensorBytes(tensor) { Array($0) })
                continue
            }
            let count = tensor.elementCount
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBufferPointer { buffer in
                Kernels.dequantizeReference(tensor.type, source: file.tensorData(tensor), into: buffer.baseAddress!, count: count)
            }
            let bytes: [UInt8]
            if target == .f16 {
                bytes = values.map { Float16($0) }.withUnsafeBytes { Array($0) }
            } else {
                bytes = values.withUnsafeBytes { Array($0) }
            }
            writer.addTensor(name: tensor.name, dimensions: tensor.dimensions, type: target, data: bytes)
            widened += 1
        }
        let serialized = writer.serialized()
        let outputFile = try AtomicOutputFile(path: output)
        try outputFile.write(serialized, at: 0)
        try outputFile.commit()
        print("\(output): \(widened) of \(file.tensors.count) tensors widened to \(type), \(ByteCount.format(serialized.count))")
    }
}
