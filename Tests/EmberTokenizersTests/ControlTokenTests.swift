import EmberGGUF
import EmberTokenizers
import Foundation
import Testing

/// Plain-mode tokenization (no `--parse-special`) treats text as if no control token existed.
@Suite("Control-token text is text unless special tokens are parsed")
struct ControlTokenTests {
    static let spellings: [String: [String]] = [
        "gemma3": ["<s></s><unk>", "</s>", "<bos>", "<eos>", "<pad>", "<mask>", "<unk>", "<start_of_turn>", "<end_of_turn>",
                   "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n", "a</s>b", "<eos><bos>", "</s></s>"],
        "smollm2": ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>", "</s>", "<s>", "<unk>"],
    ]

    /// Ids llama.cpp gives in plain mode (llama_tokenize with parse_special=false, add_special=true).
    static let llamaCpp: [String: [String: [Int32]]] = [
        "gemma3": ["<s></s><unk>": [2, 203, 954, 236751, 1798, 4984, 236813]],
    ]

    static func control(_ vocabulary: TokenizerVocabulary) -> Set<Int32> {
        Set((vocabulary.tokenTypes ?? []).enumerated().filter { $0.element == 3 }.map { Int32($0.offset) })
    }

    @Test("No control id in plain mode; the ids detokenize to the input", arguments: ["gemma3", "smollm2"])
    func plainMode(model: String) throws {
        let vocabulary = try TokenizerVocabulary(gguf: GGUFFile(path: TokenizerReferenceTests.modelPath(model)))
        let tokenizer = try makeTokenizer(vocabulary)
        let control = Self.control(vocabulary)
        for text in Self.spellings[model]! {
            var ids = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
            if let expected = Self.llamaCpp[model]?[text] { #expect(ids == expected, "\(model) \(text.debugDescription)") }
            if tokenizer.addsBOS, let bos = tokenizer.bosID, ids.first == bos { ids.removeFirst() }
            #expect(control.isDisjoint(with: ids), "\(model) \(text.debugDescription) → \(ids) holds a control id")
            #expect(tokenizer.decode(ids) == text, "\(model) \(text.debugDescription) → \(ids)")
        }
    }

    @Test("Gemma 3's </s> is a control token: matched only when parsing special text, rendered only as special")
    func gemmaEndOfSentence() throws {
        let tokenizer = try TokenizerReferenceTests.tokenizer("gemma3")
        let id = try #require(tokenizer.id(forTokenText: "</s>"))
        #expect(tokenizer.encode("</s>", addSpecial: false, parseSpecial: true) == [id])
        #expect(!tokenizer.encode("</s>", addSpecial: false, parseSpecial: false).contains(id))
        #expect(tokenizer.pieceBytes(id, renderSpecial: false).isEmpty)
        #expect(tokenizer.pieceBytes(id, renderSpecial: true) == Array("</s>".utf8))
        // <s> stays user-defined, as in llama.cpp: matched in plain text too.
        let start = try #require(tokenizer.id(forTokenText: "<s>"))
        #expect(tokenizer.encode("<s>", addSpecial: false, parseSpecial: false) == [start])
    }
}
