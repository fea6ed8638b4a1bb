import EmberCore
import Foundation

/// A source of random numbers a sampler draws from; inject a seeded one for reproducible output.
public protocol RandomSource: Sendable {
    /// A uniformly distributed value in [0, 1).
    mutating func nextUnitValue() -> Double
}

/// SplitMix64: a small, fast, seedable generator (Steele, Lea & Flood 2014).
public struct SeededRandomSource: RandomSource, RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func nextUnitValue() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// Settings of the sampler chain. `temperature <= 0` means greedy (argmax).
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float
    /// Keep the `topK` most likely tokens (0 = all).
    public var topK: Int
    /// Keep the smallest set of tokens whose probability reaches `topP` (1 = all).
    public var topP: Float
    /// Drop tokens less likely than `minP` × the most likely one (0 = none).
    public var minP: Float
    /// Divide positive logits of recently seen tokens by this (multiply negative ones); 1 = off.
    public var repetitionPenalty: Float
    /// Subtract `frequencyPenalty × count` from the logits of seen tokens.
    public var frequencyPenalty: Float
    /// Subtract `presencePenalty` from the logits of seen tokens.
    public var presencePenalty: Float
    /// How many of the last tokens the penalties look at.
    public var penaltyWindow: Int
    /// Never repeat a run of this many generated tokens (0 = off): a token that would complete an
    /// n-gram the reply already holds is excluded (n-gram blocking, Paulus et al. 2017). Only the
    /// reply counts, not the prompt, so a summary may still quote its note.
    public var noRepeatNGramSize: Int
    public var seed: UInt64
    /// A grammar the output must follow (nil: none): the first step of the chain masks every token
    /// that would leave it (llama.cpp's grammar sampler). Set by `GenerationRequest.outputFormat`.
    public var constraint: TokenConstraint?

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repetitionPenalty: Float = 1, frequencyPenalty: Float = 0, presencePenalty: Float = 0,
                penaltyWindow: Int = 64, noRepeatNGramSize: Int = 0, seed: UInt64 = 0, constraint: TokenConstraint? = nil) {
        self.constraint = constraint
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.frequencyPenalty = frequencyPenalty
        self.presencePenalty = presencePenalty
        self.penaltyWindow = penaltyWindow
        self.noRepeatNGramSize = noRepeatNGramSize
        self.seed = seed
    }

    /// Repetition penalties Ember accepts (1 = off): dividing by less, or by more, only makes
    /// infinities.
    public static let repetitionPenaltyRange: ClosedRange<Float> = 0.01...100
    /// Frequency and presence penalties Ember accepts (0 = off).
    public static let additivePenaltyRange: ClosedRange<Float> = -100...100

    /// Throws unless every setting is a number in its range (NaN is in none), each message
    /// stating the range. The sampler itself never traps on any setting; this says which ones
    /// would give nonsense.
    public func validate() throws(LanguageModelError) {
        func fail(_ message: String) -> LanguageModelError { LanguageModelError(.invalidInput, message) }
        guard temperature.isFinite, temperature >= 0 else {
            throw fail("temperature must be a finite number of at least 0 (0 is greedy), not \(temperature)")
        }
        guard topK >= 0 else { throw fail("top-k must be at least 0 (0 keeps every token), not \(topK)") }
        guard (0...1).contains(topP) else { throw fail("top-p must be between 0 and 1 (1 is off), not \(topP)") }
        guard (0...1).contains(minP) else { throw fail("min-p must be between 0 and 1 (0 is off), not \(minP)") }
        guard Self.repetitionPenaltyRange.contains(repetitionPenalty) else {
            throw fail("repeat penalty must be between \(Self.repetitionPenaltyRange.lowerBound) and \(Self.repetitionPenaltyRange.upperBound) (1 is off), not \(repetitionPenalty)")
        }
        for (name, value) in [("frequency", frequencyPenalty), ("presence", presencePenalty)] where !Self.additivePenaltyRange.contains(value) {
            throw fail("\(name) penalty must be between \(Self.additivePenaltyRange.lowerBound) and \(Self.additivePenaltyRange.upperBound) (0 is off), not \(value)")
        }
        guard penaltyWindow >= 0 else { throw fail("penalty window must be at least 0 tokens, not \(penaltyWindow)") }
        guard (0...Self.maximumNGramSize).contains(noRepeatNGramSize) else {
            throw fail("the no-repeat n-gram size must be between 0 (off) and \(Self.maximumNGramSize) tokens, not \(noRepeatNGramSize)")
        }
    }

    /// The longest n-gram the sampler blocks.
    public static let maximumNGramSize = 32

    /// Always the most likely token.
    public static let greedy = SamplingParameters(temperature: 0, topK: 1, topP: 1, minP: 0)
}

/// A candidate token and its logit, then its probability once the chain has normalized.
public struct TokenCandidate: Sendable, Equatable {
    public var id: Int32
    public var logit: Float
    public var probability: Float
}

/// The sampler chain in llama.cpp's default order: grammar mask → penalties → top-k → top-p →
/// min-p → temperature → draw. Each step is a plain function over the candidate list so each can be tested.
public struct Sampler: Sendable {
    public var parameters: SamplingParameters
    private var random: SeededRandomSource
    private var history: [Int32] = []
    /// Tokens accepted after the first `sample`: the reply, for n-gram blocking.
    private var generated: [Int32] = []
    private var hasSampled = false
    /// Where the reply stands in `parameters.constraint`'s grammar.
    public private(set) var constraintState: TokenConstraint.State = 0
    /// Tokens the reply may still take (nil: unknown). When the grammar needs nearly all of them
    /// to complete, only tokens that leave room to complete are allowed.
    public var tokenBudget: Int?

    public init(parameters: SamplingParameters, random: SeededRandomSource? = nil) {
        self.parameters = parameters
        self.random = random ?? SeededRandomSource(seed: parameters.seed)
    }

    /// A sampler whose parameters were checked first (`SamplingParameters.validate()`).
    public init(validating parameters: SamplingParameters, random: SeededRandomSource? = nil) throws(LanguageModelError) {
        try parameters.validate()
        self.init(parameters: parameters, random: random)
    }

    /// Temperatures below this sample as greedy: dividing logits by less overflows to infinity.
    public static let minimumTemperature: Float = 1e-6

    /// Records a token (of the prompt or generated) for the penalties.
    public mutating func accept(_ token: Int32) {
        if hasSampled, let constraint = parameters.constraint {
            constraintState = constraint.advance(constraintState, token: token)
            if let budget = tokenBudget { tokenBudget = budget - 1 }
        }
        if hasSampled, parameters.noRepeatNGramSize > 0, generated.count < Self.maximumBlockedHistory { generated.append(token) }
        history.append(token)
        if history.count > max(parameters.penaltyWindow, 0) * 2 + 64 {
            history.removeFirst(history.count - max(parameters.penaltyWindow, 0))
        }
    }

    /// Chooses the next token from raw logits.
    ///
    /// Never traps: a temperature below `minimumTemperature` (or NaN) is greedy, and NaN logits
    /// count as the least likely (`InferenceSession` refuses to hand out such logits at all).
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        hasSampled = true
        if let constraint = parameters.constraint { return sample(logits, constraint) }
        let greedy = !(parameters.temperature >= Self.minimumTemperature)
        let blocked = Sampler.blockedTokens(generated, n: parameters.noRepeatNGramSize)
        if greedy, !hasPenalties {
            return blocked.isEmpty ? Sampler.argmax(logits) : Sampler.argmax(logits, excluding: blocked)
        }
        var candidates = logits.enumerated().map {
            TokenCandidate(id: Int32($0.offset), logit: $0.element.isNaN ? -.infinity : $0.element, probability: 0)
        }
        guard !candidates.isEmpty else { return 0 }
        applyPenalties(&candidates)
        for token in blocked where token >= 0 && Int(token) < candidates.count { candidates[Int(token)].logit = -.infinity }
        return choose(&candidates, greedy: greedy, whenNone: 0)
    }

    /// Whether the reply is a complete output of the constraint's grammar with nothing that can follow.
    public var isOutputComplete: Bool { parameters.constraint.map { $0.isComplete(constraintState) } ?? false }

    /// Whether the reply may end here (true without a constraint).
    public var isOutputAccepted: Bool { parameters.constraint.map { $0.isAccepting(constraintState) } ?? true }

    /// Whether a constrained step first checks the tokens the chain would choose among against the
    /// grammar and builds the mask only when they do not settle it (llama.cpp checks its sampled
    /// token first the same way). The token is the same either way; off only to compare.
    public var checksLeadingTokensFirst = true

    /// Most leading tokens a constrained step checks before it falls back to the mask.
    static let maximumLeadingTokens = 256

    /// The chain over the tokens the grammar allows in the reply's state (and, when the budget is
    /// tight, only those that leave room to complete).
    private mutating func sample(_ logits: UnsafeBufferPointer<Float>, _ constraint: TokenConstraint) -> Int32 {
        var checks = 0
        var nanoseconds: UInt64 = 0
        if checksLeadingTokensFirst, let token = sampleLeading(logits, constraint, checks: &checks, nanoseconds: &nanoseconds) {
            constraint.recordStep(checks: checks, checked: true, nanoseconds: nanoseconds)
            return token
        }
        let start = MonotonicClock.nanoseconds()
        let token = sampleMasked(logits, constraint)
        constraint.recordStep(checks: checks, checked: false, nanoseconds: nanoseconds + (MonotonicClock.nanoseconds() - start))
        return token
    }

    /// The same choice as `sampleMasked`, made from the leading tokens alone when it can be.
    ///
    /// The chain's choice depends only on the allowed tokens it keeps: greedy keeps the first
    /// allowed token in the order (logit after penalties descending, id ascending), and top-k keeps
    /// the first k allowed ones; top-p, min-p, temperature and the draw then see exactly those.
    /// So walking that order and checking each token against the grammar
    /// (`TokenConstraint.remainingBytes(after:in:)`, plus the budget's room) finds the same
    /// candidates — in the same order, so the draw takes the same random number to the same token —
    /// as masking every token first. When the leading tokens hold too few allowed ones, or top-k is
    /// off (the chain then normalizes over every allowed token), or the budget must fall back to the
    /// tokens nearest completion, it returns nil and the mask decides. `checks` and `nanoseconds`
    /// count the grammar's part of the work.
    private mutating func sampleLeading(_ logits: UnsafeBufferPointer<Float>, _ constraint: TokenConstraint,
                                        checks: inout Int, nanoseconds: inout UInt64) -> Int32? {
        let greedy = !(parameters.temperature >= Self.minimumTemperature)
        let wanted = greedy ? 1 : parameters.topK
        guard wanted >= 1, wanted <= Self.maximumLeadingTokens / 2, !logits.isEmpty else { return nil }
        // The logits the chain changes before it chooses: penalized tokens, and those n-gram blocking excludes.
        let adjusted = adjustedLogits(logits)
        let state = constraintState
        let room = tokenBudget.map { UInt32(clamping: max($0 - 1, 0)) } ?? .max
        func allowed(_ id: Int32) -> Bool {
            let start = MonotonicClock.nanoseconds()
            defer { nanoseconds += MonotonicClock.nanoseconds() - start }
            checks += 1
            return constraint.remainingBytes(after: id, in: state).map { $0 <= room } ?? false
        }
        if greedy, adjusted.isEmpty {
            let first = Sampler.argmax(logits)
            if allowed(first) { return first }
        }
        var candidates: [TokenCandidate] = []
        candidates.reserveCapacity(wanted)
        for candidate in Sampler.leading(logits, count: max(wanted * 2, 64), adjusted: adjusted) where allowed(candidate.id) {
            candidates.append(candidate)
            if candidates.count == wanted { break }
        }
        guard candidates.count == wanted else { return nil }
        return choose(&candidates, greedy: greedy, whenNone: candidates[0].id)
    }

    /// The logits penalties and n-gram blocking change, by token: what the chain's candidates
    /// carry after `applyPenalties` and blocking (empty when neither is on).
    private func adjustedLogits(_ logits: UnsafeBufferPointer<Float>) -> [Int32: Float] {
        var adjusted: [Int32: Float] = [:]
        if hasPenalties, parameters.penaltyWindow > 0 {
            for (token, count) in penaltyCounts() where token >= 0 && Int(token) < logits.count {
                adjusted[token] = penalized(logits[Int(token)], count: count)
            }
        }
        for token in Sampler.blockedTokens(generated, n: parameters.noRepeatNGramSize) where token >= 0 && Int(token) < logits.count {
            adjusted[token] = -.infinity
        }
        return adjusted
    }

    /// The first `count` tokens (all when fewer) in the order the chain ranks them: logit
    /// descending (NaN as −∞), ties to the lower id — with `adjusted` logits in place of theirs.
    /// One pass keeps the best `count + adjusted.count` raw logits; dropping the adjusted ids leaves
    /// at least `count` tokens that lead every other unadjusted one, and the adjusted ones are merged
    /// in and cut after the last of those (one ranked below it could be passed by a token not kept).
    static func leading(_ logits: UnsafeBufferPointer<Float>, count: Int, adjusted: [Int32: Float] = [:]) -> [TokenCandidate] {
        let capacity = min(count + adjusted.count, logits.count)
        guard capacity > 0 else { return [] }
        // Descending by logit, ties by ascending id; ids arrive ascending, so a new token passes
        // only a strictly smaller logit.
        var best: [TokenCandidate] = []
        best.reserveCapacity(capacity + 1)
        var threshold = -Float.infinity
        for index in 0..<logits.count {
            let raw = logits[index]
            let logit = raw.isNaN ? -.infinity : raw
            if best.count == capacity {
                guard logit > threshold else { continue }
                best.removeLast()
            }
            var position = best.count
            while position > 0, best[position - 1].logit < logit { position -= 1 }
            best.insert(TokenCandidate(id: Int32(index), logit: logit, probability: 0), at: position)
            if best.count == capacity { threshold = best[capacity - 1].logit }
        }
        guard !adjusted.isEmpty else { return best }
        var kept = best.filter { adjusted[$0.id] == nil }
        // Every token outside `best` ranks below the last unadjusted one kept (if `best` is all of them, nothing is outside).
        let complete = capacity == logits.count
        let last = kept.last
        for (id, logit) in adjusted { kept.append(TokenCandidate(id: id, logit: logit, probability: 0)) }
        kept.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }
        if !complete, let last, let cut = kept.firstIndex(where: { $0.id == last.id }) {
            kept.removeSubrange((cut + 1)...)
        } else if !complete {
            return []
        }
        return kept
    }

    /// The chain over the grammar's mask of the reply's state.
    private mutating func sampleMasked(_ logits: UnsafeBufferPointer<Float>, _ constraint: TokenConstraint) -> Int32 {
        let mask = constraint.mask(constraintState)
        guard !mask.tokens.isEmpty else { return constraint.trie.endOfGenerationIDs.first ?? 0 }
        var allowed = Array(mask.tokens.indices)
        if let budget = tokenBudget {
            let room = UInt32(clamping: max(budget - 1, 0))
            if room < mask.maximumRemainingBytes {
                let fitting = allowed.filter { mask.remainingBytes[$0] <= room }
                let fewest = mask.remainingBytes.min() ?? 0
                allowed = fitting.isEmpty ? allowed.filter { mask.remainingBytes[$0] == fewest } : fitting
            }
        }
        var candidates: [TokenCandidate] = []
        candidates.reserveCapacity(allowed.count)
        for index in allowed {
            let id = mask.tokens[index]
            let logit = Int(id) < logits.count ? logits[Int(id)] : -.infinity
            candidates.append(TokenCandidate(id: id, logit: logit.isNaN ? -.infinity : logit, probability: 0))
        }
        let greedy = !(parameters.temperature >= Self.minimumTemperature)
        // Candidates are in ascending id order: a binary search finds a token's place. It searches
        // a copy of the ids: `applyPenalties` holds `candidates` for writing while it asks.
        let ids = candidates.map(\.id)
        func position(_ token: Int32) -> Int? {
            var low = 0, high = ids.count
            while low < high {
                let middle = (low + high) / 2
                if ids[middle] < token { low = middle + 1 } else { high = middle }
            }
            return low < ids.count && ids[low] == token ? low : nil
        }
        applyPenalties(&candidates, position: position)
        for token in Sampler.blockedTokens(generated, n: parameters.noRepeatNGramSize) {
            if let index = position(token) { candidates[index].logit = -.infinity }
        }
        return choose(&candidates, greedy: greedy, whenNone: candidates[0].id)
    }

    /// The chain's last steps over penalized candidates: the largest logit when greedy (ties to the
    /// lower id), else top-k, top-p, min-p, temperature and a draw; the largest logit again when
    /// the probabilities are not finite.
    private mutating func choose(_ candidates: inout [TokenCandidate], greedy: Bool, whenNone: Int32) -> Int32 {
        if greedy {
            return candidates.max { $0.logit < $1.logit || ($0.logit == $1.logit && $0.id > $1.id) }?.id ?? whenNone
        }
        Sampler.topK(&candidates, parameters.topK)
        Sampler.topP(&candidates, parameters.topP)
        Sampler.minP(&candidates, parameters.minP)
        Sampler.applyTemperature(&candidates, parameters.temperature)
        guard candidates.allSatisfy({ $0.probability.isFinite }) else {
            return candidates.max { $0.logit < $1.logit || ($0.logit == $1.logit && $0.id > $1.id) }?.id ?? 0
        }
        return Sampler.draw(candidates, unit: random.nextUnitValue())
    }

    private var hasPenalties: Bool {
        parameters.repetitionPenalty != 1 || parameters.frequencyPenalty != 0 || parameters.presencePenalty != 0
    }

    /// Penalizes the seen tokens among `candidates`; `position` finds a token's candidate (by
    /// default its id is its index: the whole vocabulary).
    private func applyPenalties(_ candidates: inout [TokenCandidate], position: ((Int32) -> Int?)? = nil) {
        guard hasPenalties, parameters.penaltyWindow > 0 else { return }
        for (token, count) in penaltyCounts() {
            let found: Int? = if let position { position(token) } else { token >= 0 && Int(token) < candidates.count ? Int(token) : nil }
            guard let index = found else { continue }
            candidates[index].logit = penalized(candidates[index].logit, count: count)
        }
    }

    /// How often each token occurs in the penalty window.
    private func penaltyCounts() -> [Int32: Int] {
        var counts: [Int32: Int] = [:]
        for token in history.suffix(parameters.penaltyWindow) { counts[token, default: 0] += 1 }
        return counts
    }

    /// A logit after the penalties for a token seen `count` times (NaN counts as −∞).
    private func penalized(_ value: Float, count: Int) -> Float {
        var logit = value.isNaN ? -.infinity : value
        if logit <= 0 { logit *= parameters.repetitionPenalty } else { logit /= parameters.repetitionPenalty }
        logit -= Float(count) * parameters.frequencyPenalty + parameters.presencePenalty
        return logit.isNaN ? -.infinity : logit
    }

    /// Generated tokens kept for n-gram blocking (a reply longer than this is checked against its start).
    static let maximumBlockedHistory = 4096

    /// Tokens that would complete an `n`-gram `tokens` already holds: for every earlier occurrence
    /// of the last n − 1 tokens, the token that followed it (n = 1: every token seen).
    public static func blockedTokens(_ tokens: [Int32], n: Int) -> Set<Int32> {
        guard n >= 1, tokens.count >= n else { return n == 1 ? Set(tokens) : [] }
        if n == 1 { return Set(tokens) }
        let prefix = tokens.suffix(n - 1)
        var blocked: Set<Int32> = []
        for start in 0...(tokens.count - n) where tokens[start..<(start + n - 1)].elementsEqual(prefix) {
            blocked.insert(tokens[start + n - 1])
        }
        return blocked
    }

    /// `argmax(_:)` over the values whose index is not in `excluded` (0 when every index is).
    public static func argmax(_ values: UnsafeBufferPointer<Float>, excluding excluded: Set<Int32>) -> Int32 {
        var best = -1
        var bestValue = -Float.infinity
        for (index, value) in values.enumerated() where !excluded.contains(Int32(index)) && (best < 0 || value > bestValue) {
            best = index
            bestValue = value.isNaN ? -.infinity : value
        }
        return Int32(max(best, 0))
    }

    /// Index of the largest value; ties go to the lower index, as llama.cpp's greedy sampler does.
    public static func argmax(_ values: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        var bestValue = -Float.infinity
        for (index, value) in values.enumerated() where value > bestValue {
            best = index
            bestValue = value
        }
        return Int32(best)
    }

    /// Keeps the `k` highest logits, sorted descending (k ≤ 0 keeps all, sorted).
    static func topK(_ candidates: inout [TokenCandidate], _ k: Int) {
        let keep = k <= 0 ? candidates.count : min(k, candidates.count)
        if keep > 0, keep < candidates.count {
            // Partial selection: a threshold pass keeps this O(n) for large vocabularies.
            let threshold = candidates.map(\.logit).sorted(by: >)[keep - 1]
            candidates = candidates.filter { $0.logit >= threshold }
        }
        candidates.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }
        if candidates.count > keep { candidates.removeLast(candidates.count - keep) }
    }

    /// Softmax over the candidates' logits (sorted descending) into `probability`.
    static func normalize(_ candidates: inout [TokenCandidate]) {
        guard let maximum = candidates.map(\.logit).max(), maximum.isFinite else {
            // Nothing finite to normalize: the first (most likely) candidate takes it all.
            for index in candidates.indices { candidates[index].probability = index == 0 ? 1 : 0 }
            return
        }
        var sum: Float = 0
        for index in candidates.indices {
            let value = expf(candidates[index].logit - maximum)
            candidates[index].probability = value
            sum += value
        }
        for index in candidates.indices { candidates[index].probability /= sum }
    }

    /// Keeps the most likely candidates until their probabilities reach `p` (at least one).
    static func topP(_ candidates: inout [TokenCandidate], _ p: Float) {
        guard p < 1, !candidates.isEmpty else { return }
        normalize(&candidates)
        var cumulative: Float = 0
        var keep = candidates.count
        for (index, candidate) in candidates.enumerated() {
            cumulative += candidate.probability
            if cumulative >= p {
                keep = index + 1
                break
            }
        }
        candidates.removeLast(candidates.count - keep)
    }

    /// Drops candidates whose probability is below `p` × the top probability (at least one kept).
    static func minP(_ candidates: inout [TokenCandidate], _ p: Float) {
        guard p > 0, let top = candidates.first?.logit else { return }
        // p_i / p_max = exp(l_i - l_max) ≥ p  ⇔  l_i ≥ l_max + ln p.
        let threshold = top + logf(p)
        let kept = candidates.filter { $0.logit >= threshold }
        candidates = kept.isEmpty ? [candidates[0]] : kept
    }

    static func applyTemperature(_ candidates: inout [TokenCandidate], _ temperature: Float) {
        for index in candidates.indices { candidates[index].logit /= temperature }
        normalize(&candidates)
    }

    /// Draws from normalized candidates with a uniform `unit` in [0, 1).
    static func draw(_ candidates: [TokenCandidate], unit: Double) -> Int32 {
        var cumulative: Double = 0
        for candidate in candidates {
            cumulative += Double(candidate.probability)
            if unit < cumulative { return candidate.id }
        }
        return candidates.last?.id ?? 0
    }
}
