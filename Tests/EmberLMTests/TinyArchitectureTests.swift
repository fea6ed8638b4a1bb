import EmberGGUF
import EmberLM
import Foundation
import Testing

/// Every architecture against llama.cpp on tiny random-weight models (Tests/Fixtures/tiny-models,
/// written by scripts/tiny_models): teacher-forced logits at every position of three 64-token
/// sequences, in F32 and quantized.
@Suite struct TinyArchitectureTests {
    /// Architectures that must have fixtures; a missing one fails rather than passing vacuously.
    static let architectures = ["qwen3", "phi3", "mistral3", "ministral", "qwen3moe", "gemma4", "gemma4moe", "gemma3n"]
    static let variants = ["f32", "q8_0"]

    struct Manifest: Decodable {
        var model: String
        var vocabulary: Int
        var sequences: [[Int32]]
        var logits: String
    }

    /// Float weights: argmax ≥ 99 %, max |Δlogit| ≤ 0.05 (measured: ≤ 0.003).
    ///
    /// Quantized weights: both engines quantize each matmul's input to 8 bits, and the last-bit
    /// differences of float summation order upstream (Ember's F32 logits differ from llama.cpp's by
    /// 5e-5 on average, as much as llama.cpp's batched and token-by-token runs differ from each
    /// other) flip a few of those roundings, layer after layer. On these random models, whose
    /// top-two logits are only 0.3 apart, that measures max |Δlogit| 0.06–0.09 and 97.7–99.2 %
    /// argmax agreement; the bound here is what that mechanism explains, not the 0.05.
    static func bounds(_ name: String) -> (agreement: Double, largestDifference: Float, positionsWithin: Double) {
        name.hasSuffix("-f32") ? (0.99, 0.05, 1) : (0.97, 0.15, 0.98)
    }

    static var directory: URL { TestSupport.fixturesDirectory.appendingPathComponent("tiny-models") }

    static var fixtureNames: [String] {
        architectures.flatMap { architecture in variants.map { "\(architecture)-\($0)" } }
    }

    @Test(arguments: fixtureNames)
    func matchesLlamaCpp(_ name: String) throws {
        let manifestURL = Self.directory.appendingPathComponent(name + ".json")
        try #require(FileManager.default.fileExists(atPath: manifestURL.path), "reference \(name).json is missing; run scripts/tiny_models/setup.sh")
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: manifestURL))
        let reference = try Data(contentsOf: Self.directory.appendingPathComponent(manifest.logits))
        let vocabulary = manifest.vocabulary
        let length = manifest.sequences[0].count
        #expect(reference.count == manifest.sequences.count * length * vocabulary * 4)
        #expect(manifest.sequences.count >= 3 && length >= 64)

        let model = try TestSupport.tinyModel(String(manifest.model.dropLast(".gguf".count)))
        #expect(model.configuration.vocabularySize == vocabulary)
        let session = InferenceSession(model: model, contextLength: 256, batchSize: 64, threadCount: 1)

        var agreed = 0, positions = 0
        var largestDifference: Float = 0
        var totalDifference: Double = 0
        var positionDifferences: [Float] = []
        reference.withUnsafeBytes { raw in
            let expected = raw.bindMemory(to: Float.self)
            for (sequenceIndex, sequence) in manifest.sequences.enumerated() {
                session.reset()
                try? session.evaluate(sequence, logits: .all) { position, logits in
                    let row = expected.baseAddress! + (sequenceIndex * length + position) * vocabulary
                    var best = 0, expectedBest = 0
                    var positionDifference: Float = 0
                    for token in 0..<vocabulary {
                        positionDifference = max(positionDifference, abs(logits[token] - row[token]))
                        totalDifference += Double(abs(logits[token] - row[token]))
                        if logits[token] > logits[best] { best = token }
                        if row[token] > row[expectedBest] { expectedBest = token }
                    }
                    if best == expectedBest { agreed += 1 }
                    positions += 1
                    largestDifference = max(largestDifference, positionDifference)
                    positionDifferences.append(positionDifference)
                }
            }
        }
        #expect(positions == manifest.sequences.count * length)
        let agreement = Double(agreed) / Double(max(1, positions))
        let bounds = Self.bounds(name)
        #expect(agreement >= bounds.agreement, "\(name): argmax agrees at \(agreed) of \(positions) positions")
        // Positions whose largest |Δlogit| is within the bound: all of them for float weights; for
        // quantized weights all but the few where a router picks between experts whose scores
        // differ in the fourth decimal and the 8-bit rounding tips the choice (qwen3moe: 3 of 256).
        let within = positionDifferences.filter { $0 <= bounds.largestDifference }.count
        #expect(Double(within) >= bounds.positionsWithin * Double(positions),
                "\(name): max |Δlogit| \(largestDifference); \(positions - within) positions above \(bounds.largestDifference)")
        print("tiny \(name): argmax \(agreed)/\(positions), max |Δlogit| \(largestDifference), mean \(totalDifference / Double(positions * vocabulary))")
    }
}
