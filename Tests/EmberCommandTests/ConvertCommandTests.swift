import EmberCore
import EmberGGUF
import Foundation
import Testing

/// `ember convert`: a quantized model rewritten with F16/F32 weights still runs and predicts what the
/// original does; the output file follows the rules of every command that writes one.
@Suite("ember convert", .serialized)
struct ConvertCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-models").path
    static let quantized = fixtures + "/qwen3-q8_0.gguf"

    static func topTokens(_ model: String) throws -> [Int] {
        let result = try CommandContractTests.run(["logits", "--model", model, "--ids", "1,5,9,13,17,21", "--top", "1", "--threads", "1"])
        #expect(result.status == 0, "\(result.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let top = try #require(object["top"] as? [[[Any]]])
        return top.map { ($0.first?.first as? NSNumber)?.intValue ?? -1 }
    }

    @Test("Widening to F16 and F32 keeps the model's predictions; the F32 file is twice the F16 weights")
    func widenedModelsPredictTheSame() throws {
        let directory = NSTemporaryDirectory() + "ember-convert-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let original = try Self.topTokens(Self.quantized)
        for type in ["f16", "f32"] {
            let output = directory + "/\(type).gguf"
            let result = try CommandContractTests.run(["convert", "--model", Self.quantized, "--type", type, "--output", output])
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput.contains("widened to \(type)"), "\(result.standardOutput)")
            let widened = try Self.topTokens(output)
            let agreeing = zip(original, widened).filter { $0 == $1 }.count
            #expect(agreeing >= original.count - 1, "\(type): \(widened) vs \(original)")
        }
        let sizes = try ["f16", "f32"].map { try FileManager.default.attributesOfItem(atPath: directory + "/\($0).gguf")[.size] as! Int }
        #expect(sizes[1] > sizes[0] * 3 / 2, "\(sizes)")
    }

    @Test("convert refuses an existing output without --overwrite, the input itself, and a type it does not write", arguments: [
        ["--type", "q4_0"], ["--output-is-input"], ["--existing"],
    ])
    func refusals(case arguments: [String]) throws {
        let directory = NSTemporaryDirectory() + "ember-convert-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var output = directory + "/out.gguf"
        var command = ["convert", "--model", Self.quantized]
        switch arguments[0] {
        case "--output-is-input": output = Self.quantized
        case "--existing": try "keep me".write(toFile: output, atomically: true, encoding: .utf8)
        default: command += arguments
        }
        let result = try CommandContractTests.run(command + ["--output", output])
        #expect(result.status != 0)
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        if arguments[0] == "--existing" { #expect(try String(contentsOfFile: output, encoding: .utf8) == "keep me") }
    }

    @Test("convert refuses a tensor type it cannot widen (q2_K) with one line naming the tensor, and writes nothing")
    func refusesTypesWithoutWidening() throws {
        let directory = NSTemporaryDirectory() + "ember-convert-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.addTensor(name: "norm.weight", dimensions: [256], type: .f32, data: [UInt8](repeating: 0, count: 256 * 4))
        writer.addTensor(name: "blk.0.ffn_down.weight", dimensions: [256, 2], type: .q2_K,
                         data: [UInt8](repeating: 1, count: 2 * TensorType.q2_K.bytesPerBlock))
        let input = directory + "/q2k.gguf", output = directory + "/out.gguf"
        try writer.write(to: input)
        let result = try CommandContractTests.run(["convert", "--model", input, "--type", "f16", "--output", output])
        #expect(result.status != 0)
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains("blk.0.ffn_down.weight") && result.standardError.contains("cannot widen"), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
