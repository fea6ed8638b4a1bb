import EmberCore
import EmberLM
import EmberScheduler

/// Summarizes notes with an on-device model, as background work through the `TokenScheduler`.
///
/// A note longer than the context allows is split at paragraph breaks into parts that fit; each part
/// is summarized, then the part summaries are combined into one. Prompts are worded per model
/// family (small instruction-tuned models want a short, direct instruction).
public final class NoteSummarizer: Sendable {
    public let model: LanguageModel
    public let scheduler: TokenScheduler
    /// Tokens of the summary.
    public let maxSummaryTokens: Int
    /// Prompt tokens one request may hold (the context minus the summary and the template).
    public let maxPromptTokens: Int

    /// What one summary cost.
    public struct Result: Sendable, Equatable {
        public var summary: String
        /// Parts the note was split into (1 when it fit).
        public var parts: Int
        public var promptTokens: Int
        public var generatedTokens: Int
        /// Host seconds from start to the last token.
        public var seconds: Double
    }

    public init(model: LanguageModel, scheduler: TokenScheduler, contextLength: Int = 2048, maxSummaryTokens: Int = 96) {
        self.model = model
        self.scheduler = scheduler
        self.maxSummaryTokens = maxSummaryTokens
        maxPromptTokens = max(128, min(contextLength, model.configuration.trainedContextLength) - maxSummaryTokens - 64)
    }

    /// The instruction for this model family.
    public var instruction: String {
        switch model.configuration.architecture {
        case "gemma3", "gemma2", "gemma": "Summarize this note in one or two sentences. Reply with the summary only."
        default: "Summarize the following note in one or two short sentences."
        }
    }

    /// Where a summary is, for a progress display: request `step` (from 1) of `stepCount` — one per part,
    /// plus one that combines the parts' summaries when there are several — with `tokens` of at most
    /// `maxTokens` generated so far.
    public struct Progress: Sendable, Equatable {
        public var step: Int
        public var stepCount: Int
        /// Whether this step combines the parts' summaries.
        public var isCombining: Bool
        public var tokens: Int
        public var maxTokens: Int
    }

    /// Summarizes `text` (titled `title`), splitting it when it does not fit one request.
    /// - Parameter progress: called on the calling task as each request starts and after each token.
    public func summarize(
        title: String, text: String, deadlineSeconds: Double? = nil,
        progress: (Progress) -> Void = { _ in }
    ) async throws -> Result {
        let start = MonotonicClock.nanoseconds()
        let parts = split(text)
        let stepCount = parts.count > 1 ? parts.count + 1 : 1
        var promptTokens = 0, generatedTokens = 0
        var partSummaries: [String] = []
        for (index, part) in parts.enumerated() {
            let (summary, prompt, generated) = try await run(header: title.isEmpty ? "" : "Title: \(title)\n\n", body: part,
                                                            deadlineSeconds: deadlineSeconds) { tokens in
                progress(Progress(step: index + 1, stepCount: stepCount, isCombining: false, tokens: tokens, maxTokens: maxSummaryTokens))
            }
            partSummaries.append(summary)
            promptTokens += prompt
            generatedTokens += generated
        }
        var summary = partSummaries.first ?? ""
        if partSummaries.count > 1 {
            let combined = partSummaries.enumerated().map { "Part \($0.offset + 1): \($0.element)" }.joined(separator: "\n")
            let (text, prompt, generated) = try await run(header: "Title: \(title)\n\nSummaries of the parts of a long note:\n",
                                                         body: combined, deadlineSeconds: deadlineSeconds) { tokens in
                progress(Progress(step: stepCount, stepCount: stepCount, isCombining: true, tokens: tokens, maxTokens: maxSummaryTokens))
            }
            summary = text
            promptTokens += prompt
            generatedTokens += generated
        }
        return Result(summary: summary, parts: parts.count, promptTokens: promptTokens, generatedTokens: generatedTokens,
                      seconds: Double(MonotonicClock.nanoseconds() - start) / 1e9)
    }

    /// Splits `text` at paragraph (then line) breaks into pieces whose prompt fits.
    func split(_ text: String) -> [String] {
        let budget = maxPromptTokens - 48  // instruction, title and template
        if model.tokenizer.encode(text, addSpecial: false, parseSpecial: false).count <= budget { return [text] }
        var parts: [String] = []
        var current = ""
        var currentTokens = 0
        let paragraphs = text.components(separatedBy: "\n\n").flatMap { paragraph -> [String] in
            let tokens = model.tokenizer.encode(paragraph, addSpecial: false, parseSpecial: false).count
            return tokens > budget ? paragraph.components(separatedBy: "\n") : [paragraph]
        }
        for paragraph in paragraphs {
            var tokens = model.tokenizer.encode(paragraph, addSpecial: false, parseSpecial: false).count
            var piece = paragraph
            if tokens > budget {  // one enormous line: cut it by characters
                piece = String(paragraph.prefix(budget * 3))
                tokens = budget
            }
            if currentTokens + tokens > budget, !current.isEmpty {
                parts.append(current)
                current = ""
                currentTokens = 0
            }
            current += (current.isEmpty ? "" : "\n\n") + piece
            currentTokens += tokens + 2
        }
        if !current.isEmpty { parts.append(current) }
        return parts
    }

    private func run(
        header: String, body: String, deadlineSeconds: Double?, progress: (_ tokens: Int) -> Void
    ) async throws -> (String, Int, Int) {
        let content = "\(instruction)\n\n\(header)\(body)"
        let prompt: Prompt = model.chatTemplate != nil ? .chat([ChatMessage(role: .user, content: content)]) : .text(content)
        let request = ScheduledRequest(prompt: prompt, maxTokens: maxSummaryTokens, sampling: .greedy,
                                       requestClass: .background, deadlineSeconds: deadlineSeconds)
        var text = ""
        var promptTokens = 0, generated = 0, generatedSoFar = 0
        progress(0)
        for try await event in scheduler.submit(request) {
            switch event {
            case .promptProcessed(let tokens, _): promptTokens = tokens
            case .token(_, let piece):
                text += piece
                generatedSoFar += 1
                progress(generatedSoFar)
            case .finished(let reason, let count):
                generated = count
                if reason == .memoryPressure || reason == .cancelled {
                    throw LanguageModelError(.cancelled, "the summary was stopped (\(reason.rawValue))")
                }
            case .paced: break
            }
        }
        return (Self.clean(text), promptTokens, generated)
    }

    /// The summary without a leading label ("Summary:") or surrounding whitespace and quotes.
    static func clean(_ text: String) -> String {
        var result = text.trimmingCharacters(in: .whitespacesAndNewlines)
        for label in ["Summary:", "**Summary:**", "Here is a summary:", "Here's a summary:"] where result.hasPrefix(label) {
            result = String(result.dropFirst(label.count)).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return result.trimmingCharacters(in: CharacterSet(charactersIn: "\"“”"))
    }
}

import Foundation

/// A machine without phone sensors (a desktop, CI): cool, plugged in, no battery saver. The
/// phone ports pass their platform's readings instead.
public struct NominalPlatform: ThermalSource, PowerSource, Sendable {
    public init() {}
    public var thermalStatus: ThermalStatus { .none }
    public func thermalHeadroom(forecastSeconds: Double) -> Double { 0 }
    public var batteryPercent: Double { 100 }
    public var isCharging: Bool { true }
    public var isPowerSaveMode: Bool { false }
}
