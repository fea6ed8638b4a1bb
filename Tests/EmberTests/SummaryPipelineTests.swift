import Foundation
import Testing
@testable import Ember

/// The summary pipeline's pieces: the extract, the faithfulness check, the prompts, and the whole
/// pipeline on the real models.
@Suite("Summary pipeline")
struct SummaryPipelineTests {
    static let meeting = """
        Attendees: Ana, Bruno, Chen.

        **Ana** shipped the billing page; the payment provider changes its API on 3 June (details in the wiki).

        Bruno is stuck on the Android crash. He thinks the image cache runs out of memory.

        Chen will hire two contractors for the migration — budget 12,000 euros.

        Action items:
        1. Ana pings the payment provider about the API.
        2. Bruno adds logging to the image cache.
        """

    @Test func theExtractKeepsSalientUnitsShortenedAndInOrder() {
        let extractive = ExtractiveSummarizer()
        let units = extractive.units(of: Self.meeting)
        // A label ending in ":" is no unit; Markdown and asides without a fact are gone, asides with one stay.
        #expect(!units.contains { $0.text.hasSuffix(":") })
        #expect(units.contains { $0.text == "Ana shipped the billing page; the payment provider changes its API on 3 June." })
        #expect(units.contains { $0.text == "Chen will hire two contractors for the migration — budget 12,000 euros." })
        #expect(units.contains { $0.isListItem && $0.text == "Bruno adds logging to the image cache." })
        let summary = extractive.summarize(title: "Team sync", text: Self.meeting)
        #expect(summary.hasPrefix("Team sync: "))
        let words = summary.split(separator: " ").count
        #expect(words > 10 && words <= Int(Double(extractive.wordBudget(noteWords: 70)) * 1.15) + 3, "\(summary)")
        // Chosen units keep the note's order.
        let chosen = extractive.select(title: "Team sync", text: Self.meeting)
        #expect(chosen.map(\.index) == chosen.map(\.index).sorted())
        // Every word of an extract comes from its note.
        #expect(FaithfulnessCheck().report(summary: summary, source: "Team sync\n" + Self.meeting).score == 1)
    }

    @Test func asidesWithFactsStayAndCommentaryGoes() {
        let extractive = ExtractiveSummarizer()
        #expect(extractive.shorten("Pack the hiking boots (Saturday 07:40 from Gare de Lyon).")
                == "Pack the hiking boots (Saturday 07:40 from Gare de Lyon).")
        #expect(extractive.shorten("Call the plumber (see above) and the landlord (maybe Tom).")
                == "Call the plumber and the landlord (maybe Tom).")
        #expect(extractive.shorten("Book the room (probably the big one) today — or so I hope")
                == "Book the room today")
        #expect(extractive.shorten("Renew the passport — expires 12 March") == "Renew the passport — expires 12 March")
        #expect(extractive.shorten("Ask about the lease (TBD)") == "Ask about the lease")
        #expect(extractive.shorten("Unclosed (aside stays") == "Unclosed (aside stays")
    }

    @Test func theBudgetGrowsWithTheLogarithmOfTheNote() {
        let extractive = ExtractiveSummarizer()
        #expect(extractive.wordBudget(noteWords: 100) < extractive.wordBudget(noteWords: 1_600))
        #expect((45...60).contains(extractive.wordBudget(noteWords: 100)))
        #expect((85...105).contains(extractive.wordBudget(noteWords: 1_600)))
        #expect(extractive.summarize(title: "", text: "").isEmpty)
        #expect(extractive.summarize(title: "Empty", text: "- \n\n#\n") == "Empty.")
    }

    @Test func sentencesSplitButNotAfterTitles() {
        #expect(ExtractiveSummarizer.sentences("Met Dr. Meyer at 9. She was late! Then 3 more came.")
                == ["Met Dr. Meyer at 9.", "She was late!", "Then 3 more came."])
        #expect(ExtractiveSummarizer.listItemText("- [x] pack the tent") == "pack the tent")
        #expect(ExtractiveSummarizer.listItemText("12) call Sam") == "call Sam")
        #expect(ExtractiveSummarizer.listItemText("Not a list") == nil)
        #expect(ExtractiveSummarizer.plain("**Bold** and [a link](https://x.org) and `code`") == "Bold and a link and code")
    }

    @Test func inventedNumbersNamesAndWordsFailTheCheck() {
        let check = FaithfulnessCheck()
        let source = "Team sync\n" + Self.meeting
        let faithful = check.report(summary: "Ana shipped the billing page and Bruno is stuck on an Android crash; Chen will hire two contractors for 12,000 euros.", source: source)
        #expect(check.passes(faithful), "\(faithful.unsupported)")
        let invented = check.report(summary: "Ana shipped the billing page; Marcus reported a delay in the payment service on 4 June.", source: source)
        #expect(!check.passes(invented))
        #expect(invented.unsupported.contains("marcus") && invented.unsupported.contains("4"))
        #expect(invented.score < 1)
        // A grocery list is not a recipe for baking powder.
        let groceries = "Groceries\n- milk\n- flour\n- salt\n- eggs"
        let recipe = check.report(summary: "A recipe for baking powder and salt, with a cake and frosting.", source: groceries)
        #expect(!check.passes(recipe))
        // Accents and spelled-out numbers still match.
        let resume = check.report(summary: "The resume for the café covers ten years.", source: "Résumé for the cafe: it covers 10 years")
        #expect(resume.score == 1, "\(resume.unsupported)")
    }

    @Test func promptsPerModelKind() {
        let chat = SummaryPrompt.make(style: .chat, title: "Trip", keyPoints: ["Train at 9."], examples: FewShotExample.builtIn, maximumWords: 40)
        guard case .chat(let messages) = chat.prompt else { Issue.record("a chat model gets a chat prompt"); return }
        #expect(messages.last?.content.contains("- Train at 9.") == true)
        let fewShot = SummaryPrompt.make(style: .fewShot, title: "Trip", keyPoints: ["Train at 9."], examples: FewShotExample.builtIn, maximumWords: 40)
        guard case .text(let text) = fewShot.prompt else { Issue.record("a pretrained model gets a text to continue"); return }
        #expect(text.hasSuffix("Note: Trip\n- Train at 9.\nSummary:"))
        for example in FewShotExample.builtIn { #expect(text.contains(example.summary)) }
        #expect(fewShot.stopRules.endOfLine && fewShot.stopRules.stopStrings.contains("Note:"))
        // A reply that writes the examples again is an echo.
        #expect(EchoCheck.echoes(FewShotExample.builtIn[0].summary, scaffolding: fewShot.scaffolding))
    }

    static let models = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]

    /// Both real models through the scheduler: the result is the model's rewrite only when it
    /// passed every check, otherwise the extract, and either way it holds no loop, no echo and
    /// nothing the note lacks.
    @Test(.enabled(if: EngineModel.available, "the models are not cached (EMBER_REQUIRE_MODELS=1 requires them)"), arguments: models)
    func thePipelineNeverReturnsALoopAnEchoOrAnInvention(file: String) async throws {
        let path = (EngineModel.path as NSString).deletingLastPathComponent + "/" + file
        try #require(FileManager.default.fileExists(atPath: path), "\(file) is missing; run `ember models fetch`")
        let model = try LanguageModel(path: path)
        let platform = PlatformStateSource(.nominal)
        let scheduler = TokenScheduler(model: model, policy: AdaptivePolicy(), thermal: platform, power: platform, threadCount: 2)
        let summarizer = NoteSummarizer(model: model, scheduler: scheduler, maxSummaryTokens: 64)
        #expect(summarizer.promptStyle == (file.hasPrefix("SmolLM2") ? .chat : .fewShot))
        let result = try await summarizer.summarize(title: "Team sync", text: Self.meeting)
        #expect(result.promptTokens > 0 && result.generatedTokens > 0)
        let checks = try #require(result.checks)
        #expect(result.modelOutput != nil)
        switch result.method {
        case .abstractive:
            #expect(!checks.loops && !checks.echoes && checks.isFaithful && checks.isComplete)
            #expect(result.summary == result.modelOutput)
        case .extractiveFallback:
            #expect(result.fallbackReason != nil)
            #expect(result.summary == result.extract)
        case .extractive:
            Issue.record("the abstractive method returned a plain extract")
        }
        #expect(!RepetitionCheck.isLooping(result.summary))
        #expect(FaithfulnessCheck().report(summary: result.summary, source: "Team sync\n" + Self.meeting).score >= 0.95)
    }
}
