/// BPE as llama.cpp's `llm_tokenizer_bpe` runs it, in two styles:
///
/// - byte-level (`tokenizer.ggml.model` = gpt2): text is split by the pre-tokenizer, each piece's
///   bytes mapped to GPT-2's printable characters, then merged by rank;
/// - SentencePiece-style (`gemma4`, Gemma 4): spaces become "▁", the text is split only at runs of
///   newlines, merges run over its UTF-8 characters, and characters without a token fall back to
///   `<0xXX>` byte tokens.
struct BytePairTokenizer: VocabularyBackedTokenizer {
    let vocabulary: TokenizerVocabulary
    let tokenIDs: [String: Int32]
    let mergeRanks: [String: Int]
    let special: SpecialTokenMatcher
    let endOfGenerationIDs: Set<Int32>
    /// Nil for the SentencePiece style, which splits only at newlines.
    let preTokenizer: PreTokenizer?
    /// Gemma 4's style: "▁" for spaces, raw UTF-8 characters, `<0xXX>` byte fallback.
    let escapesSpaces: Bool
    /// Byte → GPT-2 printable character (as a String) and back.
    let byteCharacters: [String]
    let characterBytes: [Unicode.Scalar: UInt8]

    init(_ vocabulary: TokenizerVocabulary) throws(TokenizerError) {
        guard let merges = vocabulary.merges else {
            throw TokenizerError("a \(vocabulary.model) tokenizer needs tokenizer.ggml.merges")
        }
        escapesSpaces = vocabulary.model == "gemma4"
        self.vocabulary = vocabulary
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(vocabulary.tokens.count)
        for (index, token) in vocabulary.tokens.enumerated() where ids[token] == nil { ids[token] = Int32(index) }
        tokenIDs = ids
        var ranks: [String: Int] = [:]
        ranks.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() where ranks[merge] == nil { ranks[merge] = rank }
        mergeRanks = ranks
        special = SpecialTokenMatcher(tokens: vocabulary.tokens, types: vocabulary.tokenTypes)
        endOfGenerationIDs = endOfGenerationSet(vocabulary)
        preTokenizer = escapesSpaces ? nil : try PreTokenizer(name: vocabulary.preTokenizer ?? "default")
        let table = BytePairTokenizer.byteToCharacterTable()
        byteCharacters = table.map { String(Character($0)) }
        var reverse: [Unicode.Scalar: UInt8] = [:]
        for (byte, scalar) in table.enumerated() { reverse[scalar] = UInt8(byte) }
        characterBytes = reverse
    }

    /// GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes map to
    /// themselves, the rest to U+0100 onwards in byte order.
    static func byteToCharacterTable() -> [Unicode.Scalar] {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }


    func id(forTokenText text: String) -> Int32? { tokenIDs[text] }

    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var output: [Int32] = []
        if addSpecial, addsBOS, let bos = vocabulary.bosID { output.append(bos) }
        for fragment in special.partition(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                output.append(id)
            case .text(let piece):
                if let preTokenizer {
                    for word in preTokenizer.split(piece) { encodeWord(word, into: &output) }
                } else {
                    for word in Self.newlineRuns(Self.replacing(" ", with: "\u{2581}", in: piece)) {
                        // A run of newlines that is a token stays whole.
                        if word.first == "\n", let id = tokenIDs[word] {
                            output.append(id)
                        } else {
                            encodeWord(word, into: &output)
                        }
                    }
                }
            }
        }
        if addSpecial, vocabulary.addEOS, let eos = vocabulary.eosID { output.append(eos) }
        return output
    }

    /// Gemma 4's pre-tokenizer, `[^\n]+|[\n]+`: maximal runs of newlines and of everything else.
    static func newlineRuns(_ text: String) -> [String] {
        var runs: [String] = []
        var current = ""
        var inNewlines = false
        for scalar in text.unicodeScalars {
            let isNewline = scalar == "\n"
            if !current.isEmpty && isNewline != inNewlines {
                runs.append(current)
                current = ""
            }
            inNewlines = isNewline
            current.unicodeScalars.append(scalar)
        }
        if !current.isEmpty { runs.append(current) }
        return runs
    }

    /// BPE over one pre-tokenized word: repeatedly merge the adjacent pair of lowest rank
    /// (leftmost on ties) until no pair is a known merge.
    private func encodeWord(_ word: String, into output: inout [Int32]) {
        var symbols: [String] = []
        symbols.reserveCapacity(word.utf8.count)
        if escapesSpaces {
            for scalar in word.unicodeScalars { symbols.append(String(scalar)) }
        } else {
            for byte in word.utf8 { symbols.append(byteCharacters[Int(byte)]) }
        }
        while symbols.count > 1 {
            var bestRank = Int.max
            var bestIndex = -1
            for index in 0..<(symbols.count - 1) {
                if let rank = mergeRanks[symbols[index] + " " + symbols[index + 1]], rank < bestRank {
                    bestRank = rank
                    bestIndex = index
                }
            }
            if bestIndex < 0 { break }
            symbols[bestIndex] += symbols[bestIndex + 1]
            symbols.remove(at: bestIndex + 1)
        }
        for symbol in symbols {
            if let id = tokenIDs[symbol] {
                output.append(id)
            } else if escapesSpaces {
                // No token for these characters: one `<0xXX>` byte token per UTF-8 byte.
                for byte in symbol.utf8 {
                    if let id = tokenIDs[Self.byteTokenText(byte)] { output.append(id) }
                }
            } else {
                // Unknown merged symbol: fall back to its characters one by one, as llama.cpp does.
                for scalar in symbol.unicodeScalars {
                    if let id = tokenIDs[String(scalar)] { output.append(id) }
                }
            }
        }
    }

    /// `text` with every `scalar` replaced by `replacement`.
    static func replacing(_ scalar: Unicode.Scalar, with replacement: Unicode.Scalar, in text: some StringProtocol) -> String {
        var result = String.UnicodeScalarView()
        for each in text.unicodeScalars { result.append(each == scalar ? replacement : each) }
        return String(result)
    }

    /// SentencePiece's name of a byte token: `<0x0A>`.
    static func byteTokenText(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "<0x\(digits[Int(byte >> 4)])\(digits[Int(byte & 15)])>"
    }

    func pieceBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8] {
        guard id >= 0, Int(id) < vocabulary.tokens.count else { return [] }
        let text = vocabulary.tokens[Int(id)]
        let type = vocabulary.tokenTypes.map { TokenType(rawValue: $0[Int(id)]) ?? .normal } ?? .normal
        switch type {
        case .control:
            return renderSpecial ? Array(text.utf8) : []
        case .userDefined, .unknown:
            return Array(text.utf8)
        case .unused, .undefined:
            return []
        case .byte where escapesSpaces:
            // `<0xXX>`
            guard text.utf8.count == 6, let byte = UInt8(text.dropFirst(3).prefix(2), radix: 16) else { return [] }
            return [byte]
        case .normal where escapesSpaces:
            return Array(Self.replacing("\u{2581}", with: " ", in: text).utf8)
        case .normal, .byte:
            var bytes: [UInt8] = []
            bytes.reserveCapacity(text.utf8.count)
            for scalar in text.unicodeScalars {
                if let byte = characterBytes[scalar] {
                    bytes.append(byte)
                } else {
                    bytes += Array(String(scalar).utf8)
                }
            }
            return bytes
        }
    }
}
