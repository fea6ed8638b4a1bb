import EmberCore
import Foundation

/// Perplexity of a text, measured as llama-perplexity measures it.
public struct PerplexityResult: Sendable, Equatable, Codable {
    public var perplexity: Double
    /// Standard error of the perplexity estimate.
    public var standardError: Double
    public var chunks: Int
    public var contextLength: Int
    public var scoredTokens: Int
    public var tokensPerSecond: Double
}

/// llama-perplexity's method: the text is tokenized once (BOS where the model adds it) and cut into
/// chunks of `contextLength` tokens; each chunk is evaluated from an empty cache (its first token
/// replaced by BOS where the model adds one), and only the second half of its positions is scored.
public enum Perplexity {
    public static func measure(model: LanguageModel, text: String, contextLength: Int, threadCount: Int,
                               batchSize: Int = 512, keyValueType: KeyValueType = .f16,
                               progress: (_ chunk: Int, _ chunks: Int, _ runningPerplexity: Double) -> Void = { _, _, _ in })
        throws -> PerplexityResult
    {
        let tokens = model.tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        let chunkCount = tokens.count / contextLength
        guard contextLength >= 4, chunkCount >= 1 else {
            throw LanguageModelError(.invalidInput,
                "the text has \(tokens.count) tokens, fewer than one chunk of \(contextLength); use a smaller --context or a longer file")
        }
        let session = InferenceSession(model: model.transformer, contextLength: contextLength, batchSize: batchSize,
                                       threadCount: threadCount, keyValueType: keyValueType)
        let addsBOS = model.tokenizer.addsBOS
        let first = contextLength / 2
        var sum: Double = 0
        var sumOfSquares: Double = 0
        var scored = 0
        let start = MonotonicClock.nanoseconds()
        for chunk in 0..<chunkCount {
            let chunkStart = chunk * contextLength
            var input = Array(tokens[chunkStart..<(chunkStart + contextLength)])
            if addsBOS, let bos = model.tokenizer.bosID { input[0] = bos }
            session.reset()
            try session.evaluate(input, logits: .from(first)) { index, logits in
                guard index < contextLength - 1 else { return }
                let target = Int(tokens[chunkStart + index + 1])
                let negativeLogLikelihood = logSumExp(logits) - Double(logits[target])
                sum += negativeLogLikelihood
                sumOfSquares += negativeLogLikelihood * negativeLogLikelihood
                scored += 1
            }
            progress(chunk + 1, chunkCount, exp(sum / Double(scored)))
        }
        let mean = sum / Double(scored)
        let variance = max(sumOfSquares / Double(scored) - mean * mean, 0) / Double(max(scored - 1, 1))
        let perplexity = exp(mean)
        let seconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
        return PerplexityResult(perplexity: perplexity, standardError: perplexity * variance.squareRoot(),
                                chunks: chunkCount, contextLength: contextLength, scoredTokens: scored,
                                tokensPerSecond: Double(chunkCount * contextLength) / seconds)
    }

    /// log Σ e^x in double precision.
    static func logSumExp(_ values: UnsafeBufferPointer<Float>) -> Double {
        var maximum = -Float.infinity
        for value in values where value > maximum { maximum = value }
        var sum: Double = 0
        for value in values { sum += exp(Double(value - maximum)) }
        return Double(maximum) + log(sum)
    }
}
