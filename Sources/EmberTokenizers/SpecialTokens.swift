/// A fragment of text to tokenize: plain text, or a special token already recognised.
enum Fragment {
    case text(Substring)
    case token(Int32)
}

/// Finds special-token text in a string, as llama.cpp's `tokenizer_st_partition` does: tokens are
/// tried longest first; control tokens only when parsing special text, user-defined ones always.
struct SpecialTokenMatcher: Sendable {
    /// (text, id, isControl) sorted by text length, longest first.
    private let candidates: [(text: String, id: Int32, isControl: Bool)]

    init(tokens: [String], types: [Int32]?) {
        var candidates: [(String, Int32, Bool)] = []
        if let types {
            for (index, type) in types.enumerated() {
                let text = tokens[index]
                guard !text.isEmpty else { continue }
                switch TokenType(rawValue: type) {
                case .control: candidates.append((text, Int32(index), true))
                case .userDefined: candidates.append((text, Int32(index), false))
                default: break
                }
            }
        }
        self.candidates = candidates.sorted { $0.0.utf8.count > $1.0.utf8.count || ($0.0.utf8.count == $1.0.utf8.count && $0.1 < $1.1) }
    }

    func partition(_ text: String, parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = [.text(text[...])]
        for candidate in candidates {
            if candidate.isControl && !parseSpecial { continue }
            var next: [Fragment] = []
            next.reserveCapacity(fragments.count)
            for fragment in fragments {
                guard case .text(let piece) = fragment, !piece.isEmpty else {
                    next.append(fragment)
                    continue
                }
                var rest = piece
                while let range = rest.firstRange(of: candidate.text) {
                    if range.lowerBound > rest.startIndex { next.append(.text(rest[rest.startIndex..<range.lowerBound])) }
                    next.append(.token(candidate.id))
                    rest = rest[range.upperBound...]
                }
                if !rest.isEmpty { next.append(.text(rest)) }
            }
            fragments = next
        }
        return fragments
    }
}

/// Token texts that end a generation in llama.cpp besides EOS and EOT.
let endOfGenerationTexts: Set<String> = [
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
    "<|return|>", "<|call|>", "<｜end▁of▁sentence｜>",
]

/// Spellings llama.cpp's vocabulary loader also takes for end-of-generation tokens and therefore
/// makes control tokens whatever the file says (`</s>` is user-defined in Gemma 3's vocabulary,
/// yet llama.cpp reads `</s>` in plain text as text).
let controlLookingTexts: Set<String> = endOfGenerationTexts.union([
    "</s>", "<|eom_id|>", "_<EOT>", "<end_of_utterance>",
])

/// The EOG set: EOS, EOT and control tokens whose text marks the end of a turn.
func endOfGenerationSet(_ vocabulary: TokenizerVocabulary) -> Set<Int32> {
    var ids = Set<Int32>()
    if let eos = vocabulary.eosID { ids.insert(eos) }
    if let eot = vocabulary.endOfTurnID { ids.insert(eot) }
    for (index, text) in vocabulary.tokens.enumerated() where endOfGenerationTexts.contains(text) {
        let type = vocabulary.tokenTypes?[index] ?? TokenType.control.rawValue
        if type == TokenType.control.rawValue || type == TokenType.userDefined.rawValue { ids.insert(Int32(index)) }
    }
    return ids
}
