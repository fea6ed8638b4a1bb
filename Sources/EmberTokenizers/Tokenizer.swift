import EmberGGUF

/// Turns text into token ids and back, as the model's tokenizer in llama.cpp does.
public protocol Tokenizer: Sendable {
    var vocabularySize: Int { get }
    var bosID: Int32? { get }
    var eosID: Int32? { get }
    /// Whether `encode(_, addSpecial: true, …)` puts BOS first.
    var addsBOS: Bool { get }
    /// Ids that end a generation: EOS, end-of-turn and the like (llama.cpp's EOG set).
    var endOfGenerationIDs: Set<Int32> { get }
    /// Tokenizes `text`; `addSpecial` adds BOS/EOS as the model file says; `parseSpecial` matches
    /// the text of control tokens (such as `<|im_start|>`) to their ids.
    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32]
    /// The bytes a token stands for; control tokens render their text only with `renderSpecial`.
    func pieceBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8]
    /// The vocabulary's string for `id`.
    func tokenText(_ id: Int32) -> String
    func id(forTokenText text: String) -> Int32?
}

extension Tokenizer {
    /// Detokenizes as llama.cpp's `llama_detokenize(remove_special: true, unparse_special: renderSpecial)`:
    /// a leading BOS the tokenizer adds is dropped; invalid UTF-8 is repaired.
    public func decode(_ ids: [Int32], renderSpecial: Bool = false) -> String {
        var slice = ids[...]
        if addsBOS, let bosID, slice.first == bosID { slice = slice.dropFirst() }
        var bytes: [UInt8] = []
        for id in slice { bytes += pieceBytes(id, renderSpecial: renderSpecial) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A tokenizer whose facts about the vocabulary come straight from its `TokenizerVocabulary`.
protocol VocabularyBackedTokenizer: Tokenizer {
    var vocabulary: TokenizerVocabulary { get }
}

extension VocabularyBackedTokenizer {
    var vocabularySize: Int { vocabulary.tokens.count }
    var bosID: Int32? { vocabulary.bosID }
    var eosID: Int32? { vocabulary.eosID }
    var addsBOS: Bool { vocabulary.addBOS && vocabulary.bosID != nil }

    func tokenText(_ id: Int32) -> String {
        guard id >= 0, Int(id) < vocabulary.tokens.count else { return "" }
        return vocabulary.tokens[Int(id)]
    }
}

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
public enum TokenType: Int32, Sendable {
    case undefined = 0
    case normal = 1
    case unknown = 2
    case control = 3
    case userDefined = 4
    case unused = 5
    case byte = 6
}

/// Errors building a tokenizer from a model file.
public struct TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "tokenizer: \(message)" }
}

/// Everything a tokenizer needs, read from `tokenizer.ggml.*` metadata.
public struct TokenizerVocabulary: Sendable {
    /// `gpt2` (byte-level BPE) or `llama` (SentencePiece-style).
    public var model: String
    public var preTokenizer: String?
    public var tokens: [String]
    public var scores: [Float]?
    public var tokenTypes: [Int32]?
    public var merges: [String]?
    public var bosID: Int32?
    public var eosID: Int32?
    public var unknownID: Int32?
    public var paddingID: Int32?
    public var endOfTurnID: Int32?
    public var addBOS: Bool
    public var addEOS: Bool
    public var addSpacePrefix: Bool

    public init(model: String, preTokenizer: String?, tokens: [String], scores: [Float]?, tokenTypes: [Int32]?,
                merges: [String]?, bosID: Int32?, eosID: Int32?, unknownID: Int32?, paddingID: Int32?,
                endOfTurnID: Int32?, addBOS: Bool, addEOS: Bool, addSpacePrefix: Bool) {
        self.model = model
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.scores = scores
        self.tokenTypes = tokenTypes.map { types in Self.controlLooking(tokens: tokens, types: types) }
        self.merges = merges
        self.bosID = bosID
        self.eosID = eosID
        self.unknownID = unknownID
        self.paddingID = paddingID
        self.endOfTurnID = endOfTurnID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
    }

    /// `types` with every token whose text is one of llama.cpp's end-of-generation spellings
    /// (`controlLookingTexts`, `</s>` among them) made a control token, as llama.cpp's vocabulary
    /// loader overrides them ("control-looking token … its type will be overridden"): such text in
    /// a prompt stays text unless special tokens are parsed, and the token renders only as special.
    static func controlLooking(tokens: [String], types: [Int32]) -> [Int32] {
        var types = types
        for (index, text) in tokens.enumerated() where index < types.count && controlLookingTexts.contains(text) {
            types[index] = TokenType.control.rawValue
        }
        return types
    }

    public init(gguf: GGUFFile) throws(TokenizerError) {
        guard let model = gguf.string("tokenizer.ggml.model") else {
            throw TokenizerError("the model file has no tokenizer.ggml.model")
        }
        guard let tokens = gguf.strings("tokenizer.ggml.tokens"), !tokens.isEmpty else {
            throw TokenizerError("the model file has no tokenizer.ggml.tokens")
        }
        func id(_ key: String) -> Int32? {
            guard let value = gguf.integer(key), value >= 0, value < tokens.count else { return nil }
            return Int32(value)
        }
        let types = gguf.integers("tokenizer.ggml.token_type")?.map { Int32(truncatingIfNeeded: $0) }
        if let types, types.count != tokens.count {
            throw TokenizerError("tokenizer.ggml.token_type has \(types.count) entries for \(tokens.count) tokens")
        }
        let scores = gguf.floats("tokenizer.ggml.scores")
        if let scores, scores.count != tokens.count {
            throw TokenizerError("tokenizer.ggml.scores has \(scores.count) entries for \(tokens.count) tokens")
        }
        self.init(
            model: model,
            preTokenizer: gguf.string("tokenizer.ggml.pre"),
            tokens: tokens,
            scores: scores,
            tokenTypes: types,
            merges: gguf.strings("tokenizer.ggml.merges"),
            bosID: id("tokenizer.ggml.bos_token_id"),
            eosID: id("tokenizer.ggml.eos_token_id"),
            unknownID: id("tokenizer.ggml.unknown_token_id"),
            paddingID: id("tokenizer.ggml.padding_token_id"),
            endOfTurnID: id("tokenizer.ggml.eot_token_id"),
            // llama.cpp always adds BOS for Gemma 4, whatever the file says.
            addBOS: model == "gemma4" ? true : gguf.bool("tokenizer.ggml.add_bos_token") ?? (model == "llama"),
            addEOS: gguf.bool("tokenizer.ggml.add_eos_token") ?? false,
            addSpacePrefix: gguf.bool("tokenizer.ggml.add_space_prefix") ?? (model == "llama"))
    }
}

/// Builds the tokenizer named by `vocabulary.model`.
public func makeTokenizer(_ vocabulary: TokenizerVocabulary) throws(TokenizerError) -> any Tokenizer {
    switch vocabulary.model {
    case "gpt2", "gemma4":
        return try BytePairTokenizer(vocabulary)
    case "llama":
        return try SentencePieceTokenizer(vocabulary)
    default:
        throw TokenizerError("tokenizer model '\(vocabulary.model)' is not supported (supported: gpt2, gemma4, llama)")
    }
}

public func makeTokenizer(gguf: GGUFFile) throws(TokenizerError) -> any Tokenizer {
    try makeTokenizer(TokenizerVocabulary(gguf: gguf))
}
