import EmberCore
import EmberLM

/// The prompt of an extraction or a classification, written for the kind of model that reads it:
/// a chat turn for an instruction-tuned model with a chat template, a completion for a pretrained
/// one (a document the answer naturally continues, after one short worked example).
///
/// Both put the note first and the request last (small models follow what they read last), and
/// state the schema's fields in words instead of pasting the schema (a 135M model copies a
/// schema's keywords rather than filling it in).
public struct ExtractionPrompt: Sendable, Equatable {
    /// How the prompt is framed.
    public enum Style: String, Sendable, CaseIterable {
        /// A system message and a user turn, through the model's chat template.
        case chat
        /// Plain text ending where the answer starts, for a model without a chat template.
        case completion
    }

    public var style: Style

    public init(style: Style) { self.style = style }

    /// The style a model should get: chat when its file embeds a chat template, completion otherwise.
    public static func style(for model: LanguageModel) -> Style {
        model.hasEmbeddedChatTemplate && model.chatTemplate != nil ? .chat : .completion
    }

    /// What the chat style tells the model once, as its system message.
    static let extractionRules = """
        You extract data from a note as JSON. Copy names, places, items and amounts exactly as the note \
        writes them. Include only what the note states; when it states none, give an empty list.
        """

    /// The prompt that asks for the data `schema` describes in the note.
    public func extraction(title: String, note: String, schema: JSONValue, instruction: String) -> Prompt {
        let fields = Self.fields(of: schema)
        switch style {
        case .chat:
            return .chat([
                ChatMessage(role: .system, content: Self.extractionRules),
                ChatMessage(role: .user, content: "Note title: \(title)\nNote:\n\(note)\n\n\(instruction)\nAnswer with JSON: \(fields)"),
            ])
        case .completion:
            return .text(Self.example + Self.completion(title: title, note: note, request: instruction, format: fields) + "\n")
        }
    }

    /// The prompt that asks which of `labels` fits the note.
    public func classification(title: String, note: String, labels: [String]) -> Prompt {
        let request = "Which one of these labels fits the note best: \(labels.joined(separator: ", "))?"
        switch style {
        case .chat:
            return .chat([
                ChatMessage(role: .system, content: "You classify notes. Reply with one label only."),
                ChatMessage(role: .user, content: "Note title: \(title)\nNote:\n\(note)\n\n\(request)"),
            ])
        case .completion:
            return .text(Self.completion(title: title, note: note, request: request, format: "one label", answer: "Label:") + "\n")
        }
    }

    /// One worked example for the completion style: a made-up note, a request in the same words
    /// as a real one, and its answer — the shape to continue, not data to copy.
    public static let example = completion(
        title: "Saturday", note: "Bake bread in the morning. Call Ines about the bike.",
        request: "List the people the note names.", format: #"{"people": a list of text}"#) + "\n" + #"{"people": ["Ines"]}"# + "\n\n"

    static func completion(title: String, note: String, request: String, format: String, answer: String = "JSON:") -> String {
        "Note: \(title)\n\(note)\n\nRequest: \(request)\nFormat: \(format)\n\(answer)"
    }

    /// The schema's shape in words: `{"items": a list of {"task": text, "owner": text or null}}`.
    /// A property's own `description` follows its type in parentheses.
    public static func fields(of schema: JSONValue) -> String {
        describe(schema, depth: 0)
    }

    private static func describe(_ schema: JSONValue, depth: Int) -> String {
        guard depth < 8 else { return "a value" }
        if case .array(let values)? = schema["enum"] {
            return "one of " + values.map(literal).joined(separator: ", ")
        }
        if let value = schema["const"] { return literal(value) }
        var types: [String] = []
        switch schema["type"] {
        case .string(let name)?: types = [name]
        case .array(let names)?: types = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
        default: return "a value"
        }
        let words = types.filter { $0 != "null" }.map { type -> String in
            switch type {
            case "object":
                guard case .object(let properties)? = schema["properties"] else { return "{}" }
                return "{" + properties.map { name, property in
                    var text = "\"\(name)\": " + describe(property, depth: depth + 1)
                    if case .string(let description)? = property["description"] { text += " (\(description))" }
                    return text
                }.joined(separator: ", ") + "}"
            case "array":
                let item = schema["items"].map { describe($0, depth: depth + 1) } ?? "a value"
                return "a list of " + item
            case "string":
                switch schema["format"] {
                case .string("date")?: return "a date YYYY-MM-DD"
                case .string("time")?: return "a time HH:MM"
                case .string("date-time")?: return "a date and time YYYY-MM-DDTHH:MM:SS"
                default: return "text"
                }
            case "integer": return "a whole number"
            case "number": return "a number"
            case "boolean": return "true or false"
            default: return "a value"
            }
        }
        let text = words.isEmpty ? "null" : words.joined(separator: " or ")
        return types.contains("null") && !words.isEmpty ? text + " or null" : text
    }

    private static func literal(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        case .number(_, let text): return text
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .array, .object: return "a value"
        }
    }
}
