import EmberCore
import EmberLM
import EmberTokenizers

/// The real language model as an `ExecutionEngine`: each request in flight drives a
/// `GenerationSequence` lent by a `SessionPool` (its own KV cache, sampler and detokenizer; the
/// pool's one thread pool). The app's `TokenScheduler` and the simulator's real-token mode both
/// run it, and `Generator` drives the same sequences: one loop.
///
/// A class: one owner (the executor's thread) changes the table of requests in place.
public final class ModelEngine: ExecutionEngine {
    public typealias Request = ScheduledRequest

    public let model: LanguageModel
    /// Where each request's sequence comes from (shared with a chat's generator in an engine).
    public let pool: SessionPool
    public var contextLength: Int { pool.contextLength }
    /// Threads of the pool (a step may use fewer).
    public var threadCount: Int { pool.threadCount }
    /// Keep the end of a prompt that leaves no room for the reply (`maxTokens`), instead of failing.
    public let trimsLongPrompts: Bool
    private var sequences: [Int: GenerationSequence] = [:]

    /// An engine with a pool of its own (as many sequences as requests started).
    public convenience init(model: LanguageModel, contextLength: Int = 2048, threadCount: Int, trimsLongPrompts: Bool = false) {
        self.init(pool: SessionPool(model: model, contextLength: min(contextLength, model.configuration.trainedContextLength),
                                    threadCount: max(1, threadCount)),
                  trimsLongPrompts: trimsLongPrompts)
    }

    /// An engine whose sequences come from `pool`.
    public init(pool: SessionPool, trimsLongPrompts: Bool = false) {
        model = pool.model
        self.pool = pool
        self.trimsLongPrompts = trimsLongPrompts
    }

    /// Tokenizes the prompt and takes a sequence for it (waiting while other owners of the pool,
    /// such as a chat turn, hold the rest; failing when this engine holds them all).
    public func begin(_ id: Int, _ request: ScheduledRequest) throws -> Int {
        var tokens = try model.tokenize(request.prompt)
        if trimsLongPrompts {
            let limit = contextLength - request.maxTokens - 1
            if tokens.count > limit { tokens = Array(tokens.suffix(max(1, limit))) }
        }
        guard !tokens.isEmpty, tokens.count + 1 < contextLength else {
            throw LanguageModelError(.contextFull, "the prompt has \(tokens.count) tokens but the context holds \(contextLength)")
        }
        let othersHoldSome = pool.lent > sequences.count
        let sequence = try pool.take(keepWaiting: othersHoldSome ? { true } : nil)
        sequence.begin(prompt: tokens, sampling: request.sampling, ignoreEndOfGeneration: request.ignoreEndOfGeneration,
                       reusesCache: false)
        // The pool's threads run this request's steps at its class's priority (when the pool sets any).
        sequence.priority = request.requestClass == .background ? .background : .interactive
        sequences[id] = sequence
        return tokens.count
    }

    /// Evaluates the next prompt chunk; the last one samples the first token.
    public func prefill(_ id: Int, tokens count: Int, threads: Int) throws {
        try sequence(id).processPrompt(count, threads: threads)
    }

    public func next(_ id: Int, threads: Int) throws -> GeneratedToken? {
        try sequence(id).next(threads: threads)
    }

    /// The tokens sampled by the last prompt chunks are returned as they are; the others evaluate
    /// the token returned last, together in one pass, and sample the one after it.
    public func next(batch ids: [Int], threads: Int) throws -> [GeneratedToken?] {
        try GenerationSequence.next(batch: ids.map { try sequence($0) }, threads: threads)
    }

    public func isContextFull(_ id: Int) -> Bool {
        guard let sequence = sequences[id] else { return false }
        return sequence.position >= contextLength - 1
    }

    /// Returns the request's sequence to the pool and the text its detokenizer held back.
    public func end(_ id: Int) -> String {
        guard let sequence = sequences.removeValue(forKey: id) else { return "" }
        let tail = sequence.finish()
        pool.giveBack(sequence)
        return tail
    }

    /// Drops the sequences kept for reuse.
    public func memoryPressure() -> Int {
        pool.releaseIdle()
    }

    private func sequence(_ id: Int) throws -> GenerationSequence {
        guard let sequence = sequences[id] else {
            throw LanguageModelError(.invalidInput, "request \(id) has not begun (or has ended) in the model engine")
        }
        return sequence
    }
}
