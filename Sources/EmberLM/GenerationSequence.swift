import EmberCore
import EmberTokenizers

/// A token a sequence produced: its id and the text it completes (possibly empty, while a
/// character is incomplete or when an engine only counts).
public struct GeneratedToken: Sendable, Equatable {
    public var id: Int32
    public var text: String

    public init(id: Int32, text: String) {
        self.id = id
        self.text = text
    }
}

/// One generating sequence — its inference session (KV cache and scratch), sampler, streaming
/// detokenizer and the token sampled but not yet evaluated — and the only loop body that turns a
/// prompt into tokens. `Generator` (chat and `ember generate`), the scheduler's `ModelEngine` (the
/// app's `TokenScheduler`) and the simulator's real-token engine all drive sequences, so a token
/// is made the same way whoever asks for it.
///
/// A generation: `begin` (keeps the cached prefix when asked), `processPrompt` chunk by chunk
/// (the last chunk's logits give the first token), then `next` for each token — it evaluates the
/// token returned before and samples the one after it — or `next(batch:threads:)` for one token
/// of several sequences in one pass over the weights. `finish` returns the text held back.
///
/// Lent by a `SessionPool`, which owns its memory; not thread-safe (one owner at a time).
public final class GenerationSequence {
    public let model: LanguageModel
    public let session: InferenceSession
    let pool: SharedThreadPool
    /// Tokens whose keys and values the cache holds, in order.
    public private(set) var cachedTokens: [Int32] = []
    private var sampler = Sampler(parameters: SamplingParameters())
    private var detokenizer: StreamingDetokenizer
    private var ignoresEndOfGeneration = false
    /// Prompt tokens this generation evaluates (after the reused prefix) and how many are done.
    private var prompt: [Int32] = []
    public private(set) var prefilledTokens = 0
    /// The token sampled after the last step.
    private var pendingToken: Int32 = 0
    /// Whether `pendingToken` has been returned (and so must be evaluated before the next one).
    private var pendingReturned = false
    /// The priority of this sequence's work, given to the pool's threads for its steps (interactive
    /// when lent; a scheduler marks background requests).
    public var priority = WorkPriority.interactive {
        didSet {
            guard isLent, priority != oldValue else { return }
            pool.giveBack(oldValue)
            pool.lend(priority)
        }
    }
    /// Whether a `SessionPool` has lent it (and counts its priority).
    var isLent = false

    init(model: LanguageModel, session: InferenceSession, pool: SharedThreadPool) {
        self.model = model
        self.session = session
        self.pool = pool
        detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer)
    }

    /// Positions the cache holds.
    public var position: Int { session.position }
    public var capacity: Int { session.cache.capacity }
    /// Prompt tokens this generation evaluates (those not reused from the cache).
    public var promptTokenCount: Int { prompt.count }
    public var isPromptProcessed: Bool { prefilledTokens == prompt.count }
    /// Whether the cache has no room to evaluate the token returned last (so `next` would fail):
    /// shift the context or stop.
    public var isFull: Bool { pendingReturned && session.position >= session.cache.capacity }

    /// Starts a generation from `tokens`. With `reusesCache` the cache keeps the longest prefix it
    /// shares with them (all but the last token, whose logits are needed); else it starts empty.
    /// Returns the tokens left to evaluate.
    @discardableResult
    public func begin(prompt tokens: [Int32], sampling: SamplingParameters, ignoreEndOfGeneration: Bool = false,
                      reusesCache: Bool, tokenBudget: Int? = nil) -> Int {
        var shared = 0
        while reusesCache, shared < min(cachedTokens.count, tokens.count - 1), cachedTokens[shared] == tokens[shared] {
            shared += 1
        }
        session.cache.truncate(to: min(shared, session.position))
        cachedTokens = Array(tokens[..<shared])
        sampler = Sampler(parameters: sampling)
        sampler.tokenBudget = tokenBudget
        for token in tokens { sampler.accept(token) }
        detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer)
        ignoresEndOfGeneration = ignoreEndOfGeneration
        prompt = Array(tokens[shared...])
        prefilledTokens = 0
        pendingReturned = false
        return prompt.count
    }

    /// Evaluates the next `count` prompt tokens on `threads` threads (nil: all of the pool); the
    /// last chunk samples the first token.
    public func processPrompt(_ count: Int, threads: Int? = nil) throws {
        let end = min(prompt.count, prefilledTokens + max(1, count))
        let chunk = Array(prompt[prefilledTokens..<end])
        let last = end == prompt.count
        try pool.step(threads: threads, priority: priority) {
            try session.evaluate(chunk, logits: last ? .last : .none) { _, logits in
                pendingToken = sampler.sample(logits)
            }
        }
        cachedTokens += chunk
        prefilledTokens = end
    }

    /// The next token on `threads` threads: the first comes from the prompt's logits; each later
    /// one evaluates the token returned before it. Nil at an end-of-generation token (unless the
    /// generation ignores them).
    public func next(threads: Int? = nil) throws -> GeneratedToken? {
        // A complete structured output ends here, without evaluating its last token.
        if pendingReturned, sampler.isOutputComplete { return nil }
        if pendingReturned {
            let token = pendingToken
            try pool.step(threads: threads, priority: priority) {
                try session.evaluate([token], logits: .last) { _, logits in
                    pendingToken = sampler.sample(logits)
                }
            }
            cachedTokens.append(token)
        }
        return takePending()
    }

    /// The next token of each of `sequences` (all past their prompts, one model, one pool), the
    /// tokens returned before decoded together in one pass over the weights; the same tokens as
    /// `next` on each alone.
    public static func next(batch sequences: [GenerationSequence], threads: Int? = nil) throws -> [GeneratedToken?] {
        let complete = sequences.map { $0.pendingReturned && $0.sampler.isOutputComplete }
        let stepping = sequences.filter { $0.pendingReturned && !$0.sampler.isOutputComplete }
        if stepping.count == 1 {
            return try sequences.map { try $0.next(threads: threads) }
        }
        if let lead = stepping.first {
            guard stepping.allSatisfy({ $0.pool === lead.pool }) else {
                throw LanguageModelError(.invalidInput, "a batched decode step needs sequences of one session pool")
            }
            try lead.pool.step(threads: threads, priority: lead.priority) {
                try InferenceSession.decode(stepping.map(\.pendingToken), sessions: stepping.map(\.session)) { index, logits in
                    stepping[index].pendingToken = stepping[index].sampler.sample(logits)
                }
            }
            for sequence in stepping { sequence.cachedTokens.append(sequence.pendingToken) }
        }
        return sequences.indices.map { complete[$0] ? nil : sequences[$0].takePending() }
    }

    /// Whether the reply is a complete output of the request's grammar (false without one).
    public var isOutputComplete: Bool { sampler.isOutputComplete }

    /// Whether the reply may end where it is: complete for its grammar, or unconstrained.
    public var isOutputAccepted: Bool { sampler.isOutputAccepted }

    /// The grammar state of the reply (for diagnostics).
    public var constraintState: TokenConstraint.State { sampler.constraintState }

    /// Returns the sampled token (nil at an end of generation), accepting it into the sampler's
    /// history and the detokenizer.
    private func takePending() -> GeneratedToken? {
        let token = pendingToken
        pendingReturned = true
        if !ignoresEndOfGeneration, model.tokenizer.endOfGenerationIDs.contains(token) { return nil }
        sampler.accept(token)
        return GeneratedToken(id: token, text: detokenizer.append(token))
    }

    /// Makes room in a full cache: keeps the first `keep` tokens and the newer half of the rest,
    /// and evaluates them again from an empty cache (the token returned last is evaluated by the
    /// next `next`).
    public func shiftContext(keep: Int, threads: Int? = nil) throws {
        let kept = min(max(0, keep), cachedTokens.count - 1)
        let rest = cachedTokens.count - kept
        let retained = Array(cachedTokens[..<kept]) + Array(cachedTokens[(kept + rest / 2)...])
        session.reset()
        cachedTokens = []
        try pool.step(threads: threads, priority: priority) { try session.evaluate(retained, logits: .none) }
        cachedTokens = retained
    }

    /// Ends the generation: the text the detokenizer held back (an incomplete character).
    public func finish() -> String { detokenizer.finish() }

    /// Forgets what the cache holds.
    public func reset() {
        session.reset()
        cachedTokens = []
        prompt = []
        prefilledTokens = 0
        pendingReturned = false
    }
}
