import EmberLM

/// A note's key points and the summary a person wrote for them: one example of a few-shot
/// prompt for a pretrained (not instruction-tuned) model.
public struct FewShotExample: Sendable, Equatable {
    public var title: String
    public var keyPoints: [String]
    public var summary: String
    /// The dataset note it was drawn from, so an evaluation never scores it.
    public var sourceName: String

    public init(title: String, keyPoints: [String], summary: String, sourceName: String) {
        self.title = title
        self.keyPoints = keyPoints
        self.summary = summary
        self.sourceName = sourceName
    }

    /// Three notes of the `tune` part of `Tests/Fixtures/notes-dataset` (a to-do, a stand-up and a
    /// recipe): their extractive key points and their reference summaries.
    public static let builtIn: [FewShotExample] = [
        FewShotExample(
            title: "Car service",
            keyPoints: ["Car is due for its annual service and the MOT before 15 March.",
                        "Garage on Mill Road quoted £180 for the service; brake pads might need replacing too.",
                        "Call them Monday to book, and ask whether they can do a courtesy car."],
            summary: "The car needs its annual service and MOT before 15 March; the Mill Road garage quoted £180 and the brake pads may need replacing. Call on Monday to book and ask for a courtesy car.",
            sourceName: "05-car-service"),
        FewShotExample(
            title: "Stand-up, 4 March",
            keyPoints: ["Priya finished the login screen redesign; waiting on review from design.", "Blocked on the new icon set.",
                        "Tomás is still chasing the crash on older Android phones.",
                        "He thinks it is the image cache running out of memory when the gallery opens.",
                        "CSV works; PDF export needs a library decision by Thursday."],
            summary: "At the 4 March stand-up, Priya finished the login redesign but is blocked on icons, Tomás is investigating an Android crash likely caused by the image cache, and Lena has CSV export working. A PDF library must be chosen by Thursday.",
            sourceName: "02-team-standup-march"),
        FewShotExample(
            title: "Red lentil soup",
            keyPoints: ["250 g red lentils, rinsed.", "1 onion, 2 carrots, 2 cloves of garlic.", "1 tbsp cumin, 1 tsp smoked paprika.",
                        "Soften the chopped onion and carrots in olive oil for about 8 minutes.", "Add lentils, tomatoes and stock.",
                        "Simmer 20–25 minutes until the lentils fall apart."],
            summary: "A recipe for red lentil soup: onion and carrots are softened with cumin and paprika, then simmered with lentils, tomatoes and stock for about 20 minutes.",
            sourceName: "03-lentil-soup"),
    ]
}

/// The abstractive stage's prompt for one model kind, with what the reply must not repeat.
public struct SummaryPrompt: Sendable {
    public var prompt: Prompt
    /// Instruction and example text: a run of five of its words in the reply is an echo.
    public var scaffolding: [String]
    /// Prompt labels: a reply line starting with one is an echo.
    public var labels: [String]
    /// Where the reply should end.
    public var stopRules: StopRules

    /// How a model is prompted.
    public enum Style: String, Sendable, Equatable, CaseIterable {
        /// An instruction-tuned model with a chat template (SmolLM2-Instruct): one user message.
        case chat
        /// A pretrained model (the Gemma 3 270M GGUF has no chat template): a text to continue,
        /// after a few examples of notes and their summaries.
        case fewShot = "few-shot"
    }

    static let chatInstruction = "Combine these key points into a summary of one or two sentences. Do not add anything that is not in the key points."
    /// Examples given to a chat model as earlier turns: none, since SmolLM2-135M-Instruct invented
    /// as much with two examples as without, at four times the prompt (docs/SUMMARIZATION.md).
    static let chatExampleCount = 0
    static let fewShotHeader = "Each note below is followed by a short summary that uses only facts from the note."
    static let labels = ["Title:", "Note:", "Key points:", "Summary:"]

    /// The prompt that asks for a summary of `keyPoints` from the note titled `title`.
    public static func make(style: Style, title: String, keyPoints: [String], examples: [FewShotExample],
                            maximumWords: Int) -> SummaryPrompt {
        switch style {
        case .chat:
            // The examples as earlier turns: the model answers as it answered them.
            func request(_ title: String, _ points: [String]) -> ChatMessage {
                let heading = title.isEmpty ? "" : "Title: \(title)\n"
                return ChatMessage(role: .user, content: "\(heading)Key points:\n" + points.map { "- \($0)" }.joined(separator: "\n")
                                   + "\n\n\(chatInstruction)")
            }
            var messages: [ChatMessage] = []
            for example in examples.prefix(chatExampleCount) {
                messages += [request(example.title, example.keyPoints), ChatMessage(role: .assistant, content: example.summary)]
            }
            messages.append(request(title, keyPoints))
            return SummaryPrompt(prompt: .chat(messages),
                                 scaffolding: [chatInstruction] + examples.prefix(chatExampleCount).map(\.summary), labels: labels,
                                 stopRules: StopRules(endOfParagraph: true, maximumSentences: 3, maximumWords: maximumWords))
        case .fewShot:
            func block(_ title: String, _ points: [String]) -> String {
                "Note: \(title)\n" + points.map { "- \($0)" }.joined(separator: "\n") + "\nSummary:"
            }
            var text = fewShotHeader + "\n\n"
            for example in examples {
                text += block(example.title, example.keyPoints) + " \(example.summary)\n\n"
            }
            text += block(title, keyPoints)
            return SummaryPrompt(prompt: .text(text), scaffolding: [fewShotHeader] + examples.map(\.summary), labels: labels,
                                 stopRules: StopRules(endOfParagraph: true, endOfLine: true, maximumSentences: 3,
                                                      maximumWords: maximumWords, stopStrings: ["Note:", "Summary:"]))
        }
    }
}
