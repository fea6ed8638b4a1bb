import EmberCore
import EmberGGUF
import Foundation
import Testing

/// Seeded random mutations of real and generated headers: every case must parse or be rejected
/// with a `GGUFError` — never crash, trap or allocate without bound. A failure prints the seed and
/// the case number, which reproduce it exactly.
@Suite("GGUF parser fuzzing")
struct GGUFFuzzTests {
    /// A generated model-like file: a vocabulary, merges, hyperparameters and a few tensors.
    static func corpusFile() -> [UInt8] {
        var writer = Samples.everyType()
        writer.set("tokenizer.ggml.tokens", .array(.string((0..<300).map { "tok\($0)" })))
        writer.set("tokenizer.ggml.scores", .array(.float32((0..<300).map { Float($0) })))
        writer.set("tokenizer.ggml.merges", .array(.string((0..<100).map { "t \($0)" })))
        writer.addTensor(name: "blk.0.attn_q.weight", dimensions: [32, 4], type: .q4_0, data: [UInt8](repeating: 3, count: 72))
        return writer.serialized()
    }

    /// The header of a real model (up to its data section), when the file is cached.
    static func realHeader() -> [UInt8]? {
        let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory() + "/.cache/ember/models"
        guard let file = try? GGUFFile(path: directory + "/SmolLM2-135M-Instruct.Q4_1.gguf") else { return nil }
        return Array(UnsafeRawBufferPointer(start: file.baseAddress, count: file.dataOffset))
    }

    static func mutate(_ input: [UInt8], _ random: inout TestRandom) -> [UInt8] {
        var bytes = input
        let rounds = 1 + random.below(4)
        for _ in 0..<rounds {
            guard !bytes.isEmpty else { break }
            switch random.below(7) {
            case 0:  // flip a bit
                let index = random.below(bytes.count)
                bytes[index] ^= UInt8(1) << UInt8(random.below(8))
            case 1:  // random byte
                bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            case 2:  // truncate
                bytes.removeLast(random.below(bytes.count))
            case 3:  // an extreme 64-bit value where a count or length may be
                let index = random.below(max(bytes.count - 8, 1))
                let extremes: [UInt64] = [.max, 1 << 63, 1 << 32, UInt64(Int.max), 0, 0xFFFF_FFFF, UInt64(bytes.count)]
                let value = extremes[random.below(extremes.count)]
                for k in 0..<min(8, bytes.count - index) { bytes[index + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
            case 4:  // an extreme 32-bit value (types, dimension counts)
                let index = random.below(max(bytes.count - 4, 1))
                let value = UInt32(truncatingIfNeeded: [0, 13, 9, 100, 0xFFFF_FFFF][random.below(5)])
                for k in 0..<min(4, bytes.count - index) { bytes[index + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
            case 5:  // splice: copy a chunk of the file onto another place
                let length = 1 + random.below(64)
                let from = random.below(bytes.count), to = random.below(bytes.count)
                for k in 0..<length where from + k < bytes.count && to + k < bytes.count { bytes[to + k] = bytes[from + k] }
            default:  // insert or delete a few bytes
                let index = random.below(bytes.count)
                if random.below(2) == 0 {
                    bytes.insert(contentsOf: (0..<(1 + random.below(8))).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: index)
                } else {
                    bytes.removeSubrange(index..<min(bytes.count, index + 1 + random.below(8)))
                }
            }
        }
        return bytes
    }

    @Test("100,000 mutated generated files")
    func generatedCorpus() {
        let seed: UInt64 = 0xE3BE5
        var random = TestRandom(seed: seed)
        let original = Self.corpusFile()
        var accepted = 0, rejected = 0
        for _ in 0..<100_000 {
            let bytes = Self.mutate(original, &random)
            do {
                let file = try GGUFFile(bytes: bytes)
                // Whatever was accepted must be consistent.
                for tensor in file.tensors {
                    #expect(file.dataOffset + tensor.offset + tensor.byteCount <= file.fileSize)
                }
                accepted += 1
            } catch {
                rejected += 1
            }
        }
        print("GGUF fuzz (seed \(seed)): \(accepted) accepted, \(rejected) rejected")
        #expect(accepted + rejected == 100_000)
        #expect(rejected > 50_000, "mutations should mostly break the file")
    }

    @Test("5,000 mutated real model headers")
    func realCorpus() throws {
        let header = try #require(Self.realHeader(), "SmolLM2 is missing; run `ember models fetch smollm2`")
        var random = TestRandom(seed: 0x5A0_11A)
        var outcomes = 0
        for _ in 0..<5_000 {
            let bytes = Self.mutate(header, &random)
            _ = try? GGUFFile(bytes: bytes)
            outcomes += 1
        }
        #expect(outcomes == 5_000)
    }
}
