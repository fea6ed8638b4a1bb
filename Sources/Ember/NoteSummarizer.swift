import EmberCore
import EmberLM
import EmberScheduler
import Foundation

/// Summarizes notes on the device: a pipeline, not one prompt.
///
/// 1. **Extract** (`ExtractiveSummarizer`): the note's most salient sentences and list items,
///    shortened to their content. This is a summary on its own (`Method.extractive`, no model).
/// 2. **Rewrite** (`Method.abstractive`): the model turns those key points into one or two
///    sentences, prompted per model kind (`SummaryPrompt.Style`: a chat message for an
///    instruction-tuned model, a few-shot continuation for a pretrained one), greedy, with
///    n-gram blocking and a `DecodingGuard` that stops at the end of the first paragraph, at a
///    length bound, or at a loop or an echo of the prompt. It runs as **background** work
///    through the `TokenScheduler`, so the adaptive policy defers it to cool or charging periods.
/// 3. **Check**: a rewrite that loops, echoes the prompt, is empty, fails the
///    `FaithfulnessCheck` (a number or name the note lacks, too many unsupported words) or is
///    incomplete (fewer than half the key points, or under 40 % of the extract's length) is
///    replaced by the extract, and the result says so (`ResultMethod.extractiveFallback`).
///
/// The key points are bounded by the extract's word budget, so a note of any length makes one
/// short prompt.
public final class NoteSummarizer: Sendable {
    public let model: LanguageModel
    public let scheduler: TokenScheduler
    /// Tokens of the rewrite.
    public let maxSummaryTokens: Int
    public let extractive: ExtractiveSummarizer
    public let faithfulness: FaithfulnessCheck
    public let examples: [FewShotExample]

    /// What to run.
    public enum Method: String, Sendable, Equatable, CaseIterable {
        /// Extract, rewrite with the model, check; the extract when the rewrite fails a check.
        case abstractive
        /// The extract alone, without the model.
        case extractive
    }

    /// What a summary is.
    public enum ResultMethod: String, Sendable, Equatable, CaseIterable {
        case abstractive
        case extractive
        /// The model's rewrite failed a check and the extract replaced it.
        case extractiveFallback = "extractive-fallback"
    }

    /// The checks of a model's rewrite.
    public struct Checks: Sendable, Equatable {
        /// The rewrite repeats itself (`RepetitionCheck`).
        public var loops: Bool
        /// The rewrite repeats the prompt's instruction, labels or examples (`EchoCheck`).
        public var echoes: Bool
        public var faithfulness: FaithfulnessReport
        public var isFaithful: Bool
        /// Key points the rewrite carries (two of their content words, or all when they have fewer),
        /// out of `keyPoints`.
        public var coveredKeyPoints: Int
        public var keyPoints: Int
        public var words: Int
        /// The rewrite says enough: at least `minimumCoverage` of the key points and
        /// `minimumLengthShare` of the extract's word budget.
        public var isComplete: Bool
    }

    /// Share of the key points a rewrite must carry.
    public static let minimumCoverage = 0.5
    /// Share of the extract's word budget a rewrite must reach: "We met at Aisha's." is faithful
    /// but says nothing a person would keep.
    public static let minimumLengthShare = 0.4

    /// A summary and what it cost.
    public struct Result: Sendable, Equatable {
        public var summary: String
        public var method: ResultMethod
        /// The extractive stage's summary.
        public var extract: String
        /// The model's rewrite as generated (after the stop rules), before the checks; nil without the model.
        public var modelOutput: String?
        /// The checks of `modelOutput`.
        public var checks: Checks?
        /// Why the extract replaced the rewrite ("loop", "echo", "unfaithful: …", "empty").
        public var fallbackReason: String?
        /// Why the generation stopped (a stop rule, the token limit, end of generation).
        public var stop: String?
        public var promptTokens: Int
        public var generatedTokens: Int
        /// Host seconds from start to the end.
        public var seconds: Double
    }

    /// Where a summary is, for a progress display: `tokens` of at most `maxTokens` generated so far.
    public struct Progress: Sendable, Equatable {
        public var tokens: Int
        public var maxTokens: Int
    }

    public init(model: LanguageModel, scheduler: TokenScheduler, maxSummaryTokens: Int = 96,
                extractive: ExtractiveSummarizer = ExtractiveSummarizer(), faithfulness: FaithfulnessCheck = FaithfulnessCheck(),
                examples: [FewShotExample] = FewShotExample.builtIn, promptStyle: SummaryPrompt.Style? = nil) {
        self.promptStyle = promptStyle ?? (model.hasEmbeddedChatTemplate ? .chat : .fewShot)
        self.model = model
        self.scheduler = scheduler
        self.maxSummaryTokens = maxSummaryTokens
        self.extractive = extractive
        self.faithfulness = faithfulness
        self.examples = examples
    }

    /// The extractive summary alone, without a model (`Method.extractive`).
    public static func extractiveResult(title: String, text: String,
                                        extractive: ExtractiveSummarizer = ExtractiveSummarizer()) -> Result {
        let start = MonotonicClock.nanoseconds()
        let extract = extractive.summarize(title: title, text: text)
        return Result(summary: extract, method: .extractive, extract: extract, modelOutput: nil, checks: nil, fallbackReason: nil,
                      stop: nil, promptTokens: 0, generatedTokens: 0, seconds: Double(MonotonicClock.nanoseconds() - start) / 1e9)
    }

    /// How this model is prompted: chat when its GGUF carries a chat template (instruction-tuned),
    /// a few-shot continuation otherwise (pretrained).
    public let promptStyle: SummaryPrompt.Style

    /// The summary of the note titled `title` with body `text`.
    /// - Parameter progress: called on the calling task as the rewrite starts and after each token.
    public func summarize(
        title: String, text: String, method: Method = .abstractive, deadlineSeconds: Double? = nil,
        progress: (Progress) -> Void = { _ in }
    ) async throws -> Result {
        let start = MonotonicClock.nanoseconds()
        func seconds() -> Double { Double(MonotonicClock.nanoseconds() - start) / 1e9 }
        let noteWords = text.split(whereSeparator: \.isWhitespace).count
        let allUnits = extractive.units(of: text)
        let units = extractive.select(title: title, units: allUnits, noteWords: noteWords)
        let extract = extractive.summarize(title: title, units: allUnits, noteWords: noteWords)
        var result = Result(summary: extract, method: .extractive, extract: extract, modelOutput: nil, checks: nil,
                            fallbackReason: nil, stop: nil, promptTokens: 0, generatedTokens: 0, seconds: 0)
        guard method == .abstractive, !units.isEmpty else {
            result.seconds = seconds()
            return result
        }
        // A rewrite a little longer than the extract's budget is still a summary; more is not.
        let maximumWords = extractive.wordBudget(noteWords: noteWords) * 5 / 4
        let summaryPrompt = SummaryPrompt.make(style: promptStyle, title: title, keyPoints: units.map(\.text),
                                               examples: examples, maximumWords: maximumWords)
        var watch = DecodingGuard(rules: summaryPrompt.stopRules, echoSources: summaryPrompt.scaffolding)
        let sampling = SamplingParameters(temperature: 0, topK: 1, topP: 1, minP: 0, noRepeatNGramSize: 4)
        let request = ScheduledRequest(prompt: summaryPrompt.prompt, maxTokens: maxSummaryTokens, sampling: sampling,
                                       requestClass: .background, deadlineSeconds: deadlineSeconds)
        var generated = 0
        var stop: String?
        progress(Progress(tokens: 0, maxTokens: maxSummaryTokens))
        events: for try await event in scheduler.submit(request) {
            switch event {
            case .promptProcessed(let tokens, _): result.promptTokens = tokens
            case .token(_, let piece):
                generated += 1
                progress(Progress(tokens: generated, maxTokens: maxSummaryTokens))
                if watch.append(piece) {
                    // Dropping the stream cancels the rest of the request.
                    stop = watch.stop?.rawValue
                    break events
                }
            case .finished(let reason, let count):
                generated = max(generated, count)
                stop = reason.rawValue
                if reason == .memoryPressure || reason == .cancelled {
                    throw LanguageModelError(.cancelled, "the summary was stopped (\(reason.rawValue))")
                }
            case .paced: break
            }
        }
        result.generatedTokens = generated
        result.stop = stop
        let output = Self.clean(watch.keptText)
        let source = title + "\n" + text
        let report = faithfulness.report(summary: output, source: source)
        let outputStems = Set(SummaryText.contentStems(output))
        let covered = units.filter { unit in
            let stems = Set(SummaryText.contentStems(unit.text))
            return stems.intersection(outputStems).count >= min(2, stems.count)
        }.count
        let words = output.split(whereSeparator: \.isWhitespace).count
        let checks = Checks(
            loops: watch.stop == .loop || RepetitionCheck.isLooping(watch.text),
            echoes: watch.stop == .echo
                || EchoCheck.echoes(output, scaffolding: summaryPrompt.scaffolding, labels: summaryPrompt.labels),
            faithfulness: report, isFaithful: faithfulness.passes(report), coveredKeyPoints: covered, keyPoints: units.count,
            words: words,
            isComplete: Double(covered) >= Self.minimumCoverage * Double(units.count)
                && Double(words) >= Self.minimumLengthShare * Double(extractive.wordBudget(noteWords: noteWords)))
        result.modelOutput = output
        result.checks = checks
        if WordTokens.of(output).count < 4 {
            result.fallbackReason = "empty"
        } else if checks.loops {
            result.fallbackReason = "loop"
        } else if checks.echoes {
            result.fallbackReason = "echo"
        } else if !checks.isFaithful {
            result.fallbackReason = "unfaithful: " + report.unsupported.prefix(5).joined(separator: ", ")
        } else if !checks.isComplete {
            result.fallbackReason = "incomplete: \(words) words carrying \(covered) of \(units.count) key points"
        }
        if result.fallbackReason == nil {
            result.summary = output
            result.method = .abstractive
        } else {
            result.method = .extractiveFallback
        }
        result.seconds = seconds()
        return result
    }

    /// The summary without a leading label ("Summary:"), list mark or surrounding whitespace and quotes.
    static func clean(_ text: String) -> String {
        var result = text.trimmingCharacters(in: .whitespacesAndNewlines)
        for label in ["**Summary:**", "Summary:", "Here is a summary:", "Here's a summary:", "- "] where result.hasPrefix(label) {
            result = String(result.dropFirst(label.count)).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return result.trimmingCharacters(in: CharacterSet(charactersIn: "\"“”"))
    }
}
