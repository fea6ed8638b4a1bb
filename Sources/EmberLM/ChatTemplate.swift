import EmberGGUF

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable { case system, user, assistant }
    public var role: Role
    public var content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }
}

/// Formats a conversation into the prompt text a model was trained on.
///
/// Like llama.cpp's `llama_chat_apply_template`, the family is recognised from the file's
/// `tokenizer.chat_template` (a Jinja program) by its markers rather than by running Jinja; a
/// default system prompt written into the template is honoured.
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: String, Sendable, Equatable, CaseIterable {
        /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM2, Qwen).
        case chatML
        /// `<start_of_turn>user\n…<end_of_turn>\n`, system text folded into the first user turn (Gemma).
        case gemma
    }

    public var family: Family
    /// System prompt the template inserts when the conversation has none.
    public var defaultSystemPrompt: String?

    public init(family: Family, defaultSystemPrompt: String? = nil) {
        self.family = family
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// Recognises the template of a model file, falling back to the architecture's family.
    public init?(gguf: GGUFFile, fallback: Family?) {
        if let source = gguf.string("tokenizer.chat_template") {
            if let recognized = ChatTemplate(jinjaSource: source) {
                self = recognized
                return
            }
        }
        guard let fallback else { return nil }
        self.init(family: fallback)
    }

    /// Recognises a Jinja chat template by its markers.
    public init?(jinjaSource source: String) {
        if source.contains("<|im_start|>") {
            family = .chatML
            defaultSystemPrompt = ChatTemplate.embeddedSystemPrompt(in: source)
        } else if source.contains("<start_of_turn>") {
            family = .gemma
            defaultSystemPrompt = nil
        } else {
            return nil
        }
    }

    /// The literal text of `'<|im_start|>system\n…<|im_end|>` inside a template, if present.
    static func embeddedSystemPrompt(in source: String) -> String? {
        // The newline is a real one in some files and an escaped `\n` inside a Jinja string in others.
        guard let start = source.range(of: "<|im_start|>system\n") ?? source.range(of: "<|im_start|>system\\n") else {
            return nil
        }
        let rest = source[start.upperBound...]
        guard let end = rest.range(of: "<|im_end|>") else { return nil }
        let text = String(rest[..<end.lowerBound])
        // Skip templates that insert a variable here rather than literal text.
        guard !text.contains("'"), !text.contains("{{"), !text.contains("+") else { return nil }
        return text
    }

    /// The prompt for `messages`, ending with the opening of the assistant's turn when
    /// `addGenerationPrompt` is set.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var text = ""
        switch family {
        case .chatML:
            var conversation = messages
            if let system = defaultSystemPrompt, conversation.first?.role != .system {
                conversation.insert(ChatMessage(role: .system, content: system), at: 0)
            }
            for message in conversation {
                text += "<|im_start|>\(message.role.rawValue)\n\(message.content)<|im_end|>\n"
            }
            if addGenerationPrompt { text += "<|im_start|>assistant\n" }
        case .gemma:
            var pendingSystem: String?
            for message in messages {
                switch message.role {
                case .system:
                    pendingSystem = message.content
                case .user, .assistant:
                    let role = message.role == .user ? "user" : "model"
                    var content = message.content
                    if let system = pendingSystem, message.role == .user {
                        content = system + "\n\n" + content
                        pendingSystem = nil
                    }
                    text += "<start_of_turn>\(role)\n\(content)<end_of_turn>\n"
                }
            }
            if addGenerationPrompt { text += "<start_of_turn>model\n" }
        }
        return text
    }
}
