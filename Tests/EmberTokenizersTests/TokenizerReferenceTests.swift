import EmberGGUF
import EmberTokenizers
import Foundation
import Testing

/// Tokenizers against llama.cpp's tokenization of the same files (Tests/Fixtures).
@Suite("Tokenizers match llama.cpp")
struct TokenizerReferenceTests {
    struct TokenizerFixture: Decodable {
        struct Model: Decodable {
            struct Result: Decodable {
                var text: String
                var ids: [Int32]
                var ids_parse_special: [Int32]
                var detok: String
            }
            var results: [Result]
        }
        var models: [String: Model]
    }

    struct PromptFixture: Decodable {
        struct Case: Decodable {
            var prompt: String
            var prompt_ids: [Int32]
            var gen_ids: [Int32]
            var gen_pieces_hex: [String]
        }
        var prompts: [Case]
        var extra_prompts: [Case]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func modelPath(_ alias: String) throws -> String {
        let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory() + "/.cache/ember/models"
        let file = alias == "smollm2" ? "SmolLM2-135M-Instruct.Q4_1.gguf" : "gemma-3-270m-q4_k_m.gguf"
        let path = directory + "/" + file
        try #require(FileManager.default.fileExists(atPath: path), "model \(alias) missing at \(path); run `ember models fetch \(alias)`")
        return path
    }

    static func tokenizer(_ alias: String) throws -> any Tokenizer {
        try makeTokenizer(gguf: GGUFFile(path: modelPath(alias)))
    }

    @Test("Tricky strings: ids in both modes and detokenization", arguments: ["smollm2", "gemma3"])
    func trickyStrings(model: String) throws {
        let fixture = try JSONDecoder().decode(TokenizerFixture.self,
                                               from: Data(contentsOf: Self.fixtures.appendingPathComponent("llamacpp-tokenizer.json")))
        let tokenizer = try Self.tokenizer(model)
        let results = try #require(fixture.models[model]).results
        var equal = 0
        for result in results {
            let plain = tokenizer.encode(result.text, addSpecial: true, parseSpecial: false)
            let special = tokenizer.encode(result.text, addSpecial: true, parseSpecial: true)
            #expect(plain == result.ids, "\(model) ids of \(result.text.debugDescription)")
            #expect(special == result.ids_parse_special, "\(model) parse-special ids of \(result.text.debugDescription)")
            #expect(tokenizer.decode(result.ids_parse_special, renderSpecial: true) == result.detok,
                    "\(model) detokenization of \(result.text.debugDescription)")
            if plain == result.ids && special == result.ids_parse_special { equal += 1 }
        }
        print("\(model): \(equal)/\(results.count) tokenizer strings equal in both modes")
    }

    @Test("Reference prompts tokenize to llama.cpp's ids and pieces", arguments: ["smollm2", "gemma3"])
    func promptIDs(model: String) throws {
        let fixture = try JSONDecoder().decode(PromptFixture.self,
                                               from: Data(contentsOf: Self.fixtures.appendingPathComponent("llamacpp-\(model).json")))
        let tokenizer = try Self.tokenizer(model)
        var equal = 0
        for prompt in fixture.prompts + fixture.extra_prompts {
            let ids = tokenizer.encode(prompt.prompt, addSpecial: true, parseSpecial: true)
            #expect(ids == prompt.prompt_ids, "\(model) prompt \(prompt.prompt.prefix(40).debugDescription)")
            if ids == prompt.prompt_ids { equal += 1 }
            for (id, hex) in zip(prompt.gen_ids, prompt.gen_pieces_hex) {
                let bytes = tokenizer.pieceBytes(id, renderSpecial: true)
                #expect(bytes.map { String(format: "%02x", $0) }.joined() == hex, "\(model) piece of token \(id)")
            }
        }
        print("\(model): \(equal)/\(fixture.prompts.count + fixture.extra_prompts.count) reference prompts tokenize identically")
    }

    @Test("Streaming detokenization never splits a character", arguments: ["smollm2", "gemma3"])
    func streaming(model: String) throws {
        let tokenizer = try Self.tokenizer(model)
        let text = "Emoji 😀🇫🇷, CJK 你好，世界, Thai ภาษาไทย, accents é ü — done."
        let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var streamed = ""
        for id in ids {
            let chunk = detokenizer.append(id)
            #expect(!chunk.contains("\u{FFFD}"), "a chunk held a broken character")
            streamed += chunk
        }
        streamed += detokenizer.finish()
        #expect(streamed == text)
        #expect(tokenizer.decode(ids) == text)
    }

    @Test("Byte-level BPE round-trips seeded random Unicode text")
    func roundTrip() throws {
        let tokenizer = try Self.tokenizer("smollm2")
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let alphabet = Array("aZ 09\n\t.,'!?-_éüßж中文한😀🎉\u{00A0}") 
        for _ in 0..<300 {
            let length = Int(next() % 40)
            let text = String((0..<length).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] })
            let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
            #expect(tokenizer.decode(ids) == text, "round trip of \(text.debugDescription)")
        }
    }
}

/// Gemma 4's tokenizer (`tokenizer.ggml.model` = gemma4) against llama.cpp on a small vocabulary
/// with its structure (scripts/tiny_models/tokenizer_gemma4.py writes both files).
@Suite struct Gemma4TokenizerTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            var text: String
            var ids: [Int32]
            var ids_special: [Int32]
            var pieces: [String]
        }
        var cases: [Case]
    }

    @Test func matchesLlamaCpp() throws {
        let directory = TokenizerReferenceTests.fixtures.appendingPathComponent("tokenizers")
        let tokenizer = try makeTokenizer(gguf: GGUFFile(path: directory.appendingPathComponent("gemma4-tokenizer.gguf").path))
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: directory.appendingPathComponent("gemma4-tokenizer.json")))
        #expect(fixture.cases.count >= 10)
        for item in fixture.cases {
            #expect(tokenizer.encode(item.text, addSpecial: true, parseSpecial: false) == item.ids, "\(item.text.debugDescription)")
            #expect(tokenizer.encode(item.text, addSpecial: true, parseSpecial: true) == item.ids_special, "\(item.text.debugDescription)")
            let pieces = item.ids.map { String(decoding: tokenizer.pieceBytes($0, renderSpecial: false), as: UTF8.self) }
            // A piece that is part of a multi-byte character is not valid UTF-8 alone (llama-cpp-python shows U+FFFD).
            for (piece, expected) in zip(pieces, item.pieces) where !expected.contains("\u{FFFD}") {
                #expect(piece == expected, "\(item.text.debugDescription)")
            }
            #expect(tokenizer.decode(item.ids) == item.text, "round trip of \(item.text.debugDescription)")
        }
        #expect(tokenizer.addsBOS)
    }
}
