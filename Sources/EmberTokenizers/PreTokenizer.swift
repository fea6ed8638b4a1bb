/// Splits text into words before BPE, reproducing llama.cpp's hand-written version of GPT-2's
/// pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
/// Some pre-tokenizers first isolate every digit (`\p{N}`), as SmolLM's does.
struct PreTokenizer: Sendable {
    let isolatesDigits: Bool

    init(name: String) throws(TokenizerError) {
        switch name {
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva":
            isolatesDigits = true
        case "default", "gpt2", "gpt-2":
            isolatesDigits = false
        default:
            throw TokenizerError("pre-tokenizer '\(name)' is not supported (supported: smollm, gpt2, default)")
        }
    }

    /// Character classes as llama.cpp's Unicode tables define them.
    struct Flags {
        var isLetter = false
        var isNumber = false
        var isWhitespace = false
        var isDefined = false

        init(_ scalar: Unicode.Scalar) {
            let properties = scalar.properties
            isWhitespace = properties.isWhitespace
            switch properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                isLetter = true
            case .decimalNumber, .letterNumber, .otherNumber:
                isNumber = true
            default:
                break
            }
            isDefined = properties.generalCategory != .unassigned || isWhitespace
        }
    }

    func split(_ text: Substring) -> [String] {
        let scalars = Array(text.unicodeScalars)
        let flags = scalars.map(Flags.init)
        var words: [String] = []
        func emit(_ range: Range<Int>) {
            var word = ""
            word.unicodeScalars.append(contentsOf: scalars[range])
            words.append(word)
        }
        if isolatesDigits {
            var start = 0
            for index in scalars.indices where flags[index].isNumber {
                if start < index { splitGPT2(scalars, flags, start..<index, emit) }
                emit(index..<(index + 1))
                start = index + 1
            }
            if start < scalars.count { splitGPT2(scalars, flags, start..<scalars.count, emit) }
        } else {
            splitGPT2(scalars, flags, 0..<scalars.count, emit)
        }
        return words
    }

    private func splitGPT2(_ scalars: [Unicode.Scalar], _ flags: [Flags], _ bounds: Range<Int>, _ emit: (Range<Int>) -> Void) {
        let end = bounds.upperBound
        func scalar(_ index: Int) -> Unicode.Scalar? { index < end ? scalars[index] : nil }
        func flag(_ index: Int) -> Flags? { index < end ? flags[index] : nil }
        var position = bounds.lowerBound
        while position < end {
            let start = position
            let current = scalars[position]
            // 's|'t|'re|'ve|'m|'ll|'d
            if current == "'", let next = scalar(position + 1) {
                if next == "s" || next == "t" || next == "m" || next == "d" {
                    emit(start..<(start + 2))
                    position += 2
                    continue
                }
                if let third = scalar(position + 2),
                   (next == "r" && third == "e") || (next == "v" && third == "e") || (next == "l" && third == "l") {
                    emit(start..<(start + 3))
                    position += 3
                    continue
                }
            }
            let leadingSpace = current == " "
            let subject = leadingSpace ? flag(position + 1) : flags[position]
            if let subject {
                // ?\p{L}+
                if subject.isLetter {
                    position += leadingSpace ? 1 : 0
                    while let f = flag(position), f.isLetter { position += 1 }
                    emit(start..<position)
                    continue
                }
                // ?\p{N}+
                if subject.isNumber {
                    position += leadingSpace ? 1 : 0
                    while let f = flag(position), f.isNumber { position += 1 }
                    emit(start..<position)
                    continue
                }
                // ?[^\s\p{L}\p{N}]+
                if !subject.isWhitespace, !subject.isLetter, !subject.isNumber, subject.isDefined {
                    position += leadingSpace ? 1 : 0
                    while let f = flag(position), !f.isWhitespace, !f.isLetter, !f.isNumber, f.isDefined { position += 1 }
                    emit(start..<position)
                    continue
                }
            }
            var whitespaceCount = 0
            while let f = flag(position + whitespaceCount), f.isWhitespace { whitespaceCount += 1 }
            // \s+(?!\S): leave the last whitespace to start the next word.
            if whitespaceCount > 1, position + whitespaceCount < end {
                position += whitespaceCount - 1
                emit(start..<position)
                continue
            }
            // \s+
            if whitespaceCount > 0 {
                position += whitespaceCount
                emit(start..<position)
                continue
            }
            position += 1
            emit(start..<position)
        }
    }
}
