/// SentencePiece-style tokenizer (`tokenizer.ggml.model` = llama), as llama.cpp's
/// `llm_tokenizer_spm` runs it: spaces become ▁, the text starts as single characters, and the
/// adjacent pair whose concatenation is the best-scoring vocabulary entry is merged until none is;
/// characters outside the vocabulary fall back to `<0xNN>` byte tokens.
struct SentencePieceTokenizer: VocabularyBackedTokenizer {
    let vocabulary: TokenizerVocabulary
    /// Token text → id, keyed by UTF-8 bytes: Swift's `String` equality is canonical (`é` equals
    /// `e` + U+0301), but the vocabulary distinguishes them.
    let tokenIDs: [[UInt8]: Int32]
    let scores: [Float]
    let special: SpecialTokenMatcher
    let endOfGenerationIDs: Set<Int32>
    /// Byte value → id of its `<0xNN>` token.
    let byteTokens: [Int32?]

    init(_ vocabulary: TokenizerVocabulary) throws(TokenizerError) {
        self.vocabulary = vocabulary
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(vocabulary.tokens.count)
        for (index, token) in vocabulary.tokens.enumerated() {
            let key = Array(token.utf8)
            if ids[key] == nil { ids[key] = Int32(index) }
        }
        tokenIDs = ids
        scores = vocabulary.scores ?? [Float](repeating: 0, count: vocabulary.tokens.count)
        special = SpecialTokenMatcher(tokens: vocabulary.tokens, types: vocabulary.tokenTypes)
        endOfGenerationIDs = endOfGenerationSet(vocabulary)
        let hexDigits = Array("0123456789ABCDEF")
        byteTokens = (0..<256).map { byte in
            ids[Array("<0x\(hexDigits[byte >> 4])\(hexDigits[byte & 15])>".utf8)]
        }
    }


    func id(forTokenText text: String) -> Int32? { tokenIDs[Array(text.utf8)] }

    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var output: [Int32] = []
        if addSpecial, addsBOS, let bos = vocabulary.bosID { output.append(bos) }
        var isFirst = true
        for fragment in special.partition(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                output.append(id)
            case .text(let piece):
                var escaped = vocabulary.addSpacePrefix && isFirst ? "▁" : ""
                for character in piece.unicodeScalars {
                    if character == " " { escaped += "▁" } else { escaped.unicodeScalars.append(character) }
                }
                encodeEscaped(escaped, into: &output)
            }
            isFirst = false
        }
        if addSpecial, vocabulary.addEOS, let eos = vocabulary.eosID { output.append(eos) }
        return output
    }

    /// A symbol of the merge: a range of the text's UTF-8 bytes, linked to its neighbours.
    private struct Symbol {
        var start: Int
        var length: Int
        var previous: Int
        var next: Int
    }

    private struct Bigram: Comparable {
        var left: Int
        var right: Int
        var score: Float
        var length: Int

        /// Higher score first; on ties the leftmost pair.
        static func < (a: Bigram, b: Bigram) -> Bool {
            a.score < b.score || (a.score == b.score && a.left > b.left)
        }
    }

    private func encodeEscaped(_ text: String, into output: inout [Int32]) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return }
        var symbols: [Symbol] = []
        var offset = 0
        while offset < bytes.count {
            let length = min(utf8Length(bytes[offset]), bytes.count - offset)
            symbols.append(Symbol(start: offset, length: length, previous: symbols.count - 1, next: symbols.count + 1))
            offset += length
        }
        symbols[symbols.count - 1].next = -1

        var queue = Heap<Bigram>()
        func slice(_ start: Int, _ length: Int) -> [UInt8] {
            Array(bytes[start..<(start + length)])
        }
        func tryAdd(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let candidate = slice(symbols[left].start, symbols[left].length + symbols[right].length)
            guard let id = tokenIDs[candidate] else { return }
            queue.insert(Bigram(left: left, right: right, score: scores[Int(id)], length: candidate.count))
        }
        for index in 1..<symbols.count { tryAdd(index - 1, index) }

        while let bigram = queue.popMax() {
            let left = bigram.left, right = bigram.right
            // Skip pairs made stale by an earlier merge.
            guard symbols[left].length > 0, symbols[right].length > 0,
                  symbols[left].length + symbols[right].length == bigram.length,
                  symbols[left].next == right else { continue }
            symbols[left].length += symbols[right].length
            symbols[right].length = 0
            symbols[left].next = symbols[right].next
            if symbols[right].next >= 0 { symbols[symbols[right].next].previous = left }
            tryAdd(symbols[left].previous, left)
            tryAdd(left, symbols[left].next)
        }

        var index = 0
        while index >= 0, index < symbols.count {
            let symbol = symbols[index]
            let piece = slice(symbol.start, symbol.length)
            if let id = tokenIDs[piece] {
                output.append(id)
            } else {
                for byte in bytes[symbol.start..<(symbol.start + symbol.length)] {
                    if let id = byteTokens[Int(byte)] {
                        output.append(id)
                    } else if let unknown = vocabulary.unknownID {
                        output.append(unknown)
                    }
                }
            }
            index = symbol.next
        }
    }

    private func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0..<0x80: return 1
        case 0xC0..<0xE0: return 2
        case 0xE0..<0xF0: return 3
        case 0xF0...0xFF: return 4
        default: return 1
        }
    }

    func pieceBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8] {
        guard id >= 0, Int(id) < vocabulary.tokens.count else { return [] }
        let text = vocabulary.tokens[Int(id)]
        let type = vocabulary.tokenTypes.map { TokenType(rawValue: $0[Int(id)]) ?? .normal } ?? .normal
        switch type {
        case .control:
            return renderSpecial ? Array(text.utf8) : []
        case .userDefined:
            return Array(text.utf8)
        case .unknown:
            return Array("▅".utf8)
        case .unused, .undefined:
            return []
        case .byte:
            // `<0xNN>`
            let digits = text.dropFirst(3).prefix(2)
            return UInt8(digits, radix: 16).map { [$0] } ?? []
        case .normal:
            var bytes: [UInt8] = []
            for scalar in text.unicodeScalars {
                if scalar == "▁" { bytes.append(0x20) } else { bytes += Array(String(scalar).utf8) }
            }
            return bytes
        }
    }
}

/// A binary max-heap.
struct Heap<Element: Comparable> {
    private var storage: [Element] = []

    mutating func insert(_ element: Element) {
        storage.append(element)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard storage[parent] < storage[child] else { break }
            storage.swapAt(parent, child)
            child = parent
        }
    }

    mutating func popMax() -> Element? {
        guard !storage.isEmpty else { return nil }
        storage.swapAt(0, storage.count - 1)
        let top = storage.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var largest = parent
            if left < storage.count, storage[largest] < storage[left] { largest = left }
            if right < storage.count, storage[largest] < storage[right] { largest = right }
            if largest == parent { break }
            storage.swapAt(parent, largest)
            parent = largest
        }
        return top
    }
}
