import EmberCore
import EmberGGUF
import EmberTokenizers
import Synchronization

/// A model ready to run: weights, tokenizer and chat template from one GGUF file.
/// Immutable and shareable; generation state lives in a `Generator` or an `InferenceSession`.
public final class LanguageModel: Sendable {
    public let path: String
    public let transformer: TransformerModel
    public let tokenizer: any Tokenizer
    public let chatTemplate: ChatTemplate?
    /// Whether the file carries its own chat template (`tokenizer.chat_template`): an
    /// instruction-tuned model. A pretrained one (the Gemma 3 270M base GGUF) has none, and
    /// `chatTemplate` is then only its architecture's format.
    public let hasEmbeddedChatTemplate: Bool
    /// Milliseconds spent opening, validating and binding the file and building the tokenizer.
    public let loadMilliseconds: Double
    /// The vocabulary's byte trie and the constraints compiled against it, built on first use.
    private let constraints = Mutex(ConstraintCache())

    public var configuration: ModelConfiguration { transformer.configuration }

    /// Opens the GGUF file at `path` (memory-mapped) and prepares it for inference.
    public convenience init(path: String, options: LoadOptions = LoadOptions()) throws {
        let start = MonotonicClock.nanoseconds()
        try self.init(file: GGUFFile(path: path), path: path, options: options, startedAt: start)
    }

    /// A model from an already opened GGUF file (for example one decoded from a compressed
    /// container into memory); `path` names it in messages.
    public init(file: GGUFFile, path: String, options: LoadOptions = LoadOptions(),
                startedAt start: UInt64 = MonotonicClock.nanoseconds()) throws {
        self.path = path
        transformer = try TransformerModel(file: file, options: options)
        tokenizer = try makeTokenizer(gguf: file)
        chatTemplate = ChatTemplate(gguf: file, fallback: transformer.traits.defaultChatTemplate)
        hasEmbeddedChatTemplate = file.string("tokenizer.chat_template") != nil
        loadMilliseconds = MonotonicClock.milliseconds(since: start)
    }

    /// Tokenizes a prompt: plain text with BOS as the file says and special-token text matched,
    /// or a conversation rendered through the chat template.
    public func tokenize(_ prompt: Prompt) throws(LanguageModelError) -> [Int32] {
        switch prompt {
        case .ids(let ids):
            return ids
        case .text(let text):
            return tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        case .chat(let messages):
            guard let chatTemplate else {
                throw LanguageModelError(.invalidInput, "this model file has no chat template Ember recognises; use a plain prompt")
            }
            return tokenizer.encode(chatTemplate.render(messages), addSpecial: true, parseSpecial: true)
        }
    }
}

/// The grammar caches of a model: its token trie and its most recently used constraints.
struct ConstraintCache {
    var trie: TokenByteTrie?
    var constraints: [(OutputFormat, TokenConstraint)] = []
    static let capacity = 16
}

extension LanguageModel {
    /// The vocabulary as a byte trie (built once, on first use).
    public var tokenByteTrie: TokenByteTrie {
        if let trie = constraints.withLock({ $0.trie }) { return trie }
        let trie = TokenByteTrie(tokenizer: tokenizer)
        constraints.withLock { $0.trie = $0.trie ?? trie }
        return trie
    }

    /// `format` compiled and bound to this model's vocabulary; the last few are kept, so requests
    /// with the same format share their cached masks.
    public func constraint(for format: OutputFormat) throws(LanguageModelError) -> TokenConstraint {
        if let cached = constraints.withLock({ $0.constraints.first { $0.0 == format }?.1 }) { return cached }
        let constraint = TokenConstraint(grammar: try Grammar(format), trie: tokenByteTrie)
        constraints.withLock { cache in
            cache.constraints.insert((format, constraint), at: 0)
            if cache.constraints.count > ConstraintCache.capacity { cache.constraints.removeLast() }
        }
        return constraint
    }
}

/// What to generate from.
public enum Prompt: Sendable, Equatable {
    case text(String)
    case ids([Int32])
    case chat([ChatMessage])
}
