import EmberCore
import EmberLM
import EmberTokenizers

/// The real language model as an `ExecutionEngine`: one KV cache per request in flight, taken
/// from a pool of sessions, with its own sampler and detokenizer. The app's `TokenScheduler` and
/// the simulator's real-token mode both run it.
///
/// A class: one owner (the executor's thread) changes sessions, samplers and detokenizers in place.
public final class ModelEngine: ExecutionEngine {
    public typealias Request = ScheduledRequest

    public let model: LanguageModel
    public let contextLength: Int
    /// Threads of each session's pool (a step may use fewer).
    public let threadCount: Int
    /// Keep the end of a prompt that leaves no room for the reply (`maxTokens`), instead of failing.
    public let trimsLongPrompts: Bool
    private var states: [Int: RequestState] = [:]
    /// Sessions of finished requests, kept for the next ones (allocating a KV cache and scratch
    /// per request would dominate short replies).
    private var freeSessions: [InferenceSession] = []

    private final class RequestState {
        let request: ScheduledRequest
        let tokens: [Int32]
        let session: InferenceSession
        var sampler: Sampler
        var detokenizer: StreamingDetokenizer
        var prefilled = 0
        /// The token sampled after the last step.
        var nextToken: Int32 = 0
        /// Whether `nextToken` has been returned (and so must be evaluated before the next one).
        var nextTokenReturned = false

        init(request: ScheduledRequest, tokens: [Int32], session: InferenceSession, sampler: Sampler,
             detokenizer: StreamingDetokenizer) {
            self.request = request
            self.tokens = tokens
            self.session = session
            self.sampler = sampler
            self.detokenizer = detokenizer
        }
    }

    public init(model: LanguageModel, contextLength: Int = 2048, threadCount: Int, trimsLongPrompts: Bool = false) {
        self.model = model
        self.contextLength = min(contextLength, model.configuration.trainedContextLength)
        self.threadCount = max(1, threadCount)
        self.trimsLongPrompts = trimsLongPrompts
    }

    /// Tokenizes the prompt and takes a session for it.
    public func begin(_ id: Int, _ request: ScheduledRequest) throws -> Int {
        var tokens = try model.tokenize(request.prompt)
        if trimsLongPrompts {
            let limit = contextLength - request.maxTokens - 1
            if tokens.count > limit { tokens = Array(tokens.suffix(max(1, limit))) }
        }
        guard !tokens.isEmpty, tokens.count + 1 < contextLength else {
            throw LanguageModelError(.contextFull, "the prompt has \(tokens.count) tokens but the context holds \(contextLength)")
        }
        let session = freeSessions.popLast()
            ?? InferenceSession(model: model.transformer, contextLength: contextLength, threadCount: threadCount)
        session.reset()
        var sampler = Sampler(parameters: request.sampling)
        for token in tokens { sampler.accept(token) }
        states[id] = RequestState(request: request, tokens: tokens, session: session, sampler: sampler,
                                  detokenizer: StreamingDetokenizer(tokenizer: model.tokenizer))
        return tokens.count
    }

    /// Evaluates the next prompt chunk; the last one samples the first token.
    public func prefill(_ id: Int, tokens count: Int, threads: Int) throws {
        let state = try self.state(id)
        state.session.pool.activeThreadCount = threads
        let end = min(state.tokens.count, state.prefilled + max(1, count))
        let last = end == state.tokens.count
        try state.session.evaluate(Array(state.tokens[state.prefilled..<end]), logits: last ? .last : .none) { _, logits in
            state.nextToken = state.sampler.sample(logits)
        }
        state.prefilled = end
    }

    public func next(_ id: Int, threads: Int) throws -> GeneratedToken? {
        try next(batch: [id], threads: threads)[0]
    }

    /// The tokens sampled by the last prompt chunks are returned as they are; the others evaluate
    /// the token returned last, together in one pass, and sample the one after it.
    public func next(batch ids: [Int], threads: Int) throws -> [GeneratedToken?] {
        let batch = try ids.map { try state($0) }
        let stepping = batch.filter(\.nextTokenReturned)
        if let lead = stepping.first {
            lead.session.pool.activeThreadCount = threads
            try InferenceSession.decode(stepping.map(\.nextToken), sessions: stepping.map(\.session)) { index, logits in
                stepping[index].nextToken = stepping[index].sampler.sample(logits)
            }
        }
        return batch.map { state in
            let token = state.nextToken
            state.nextTokenReturned = true
            if !state.request.ignoreEndOfGeneration, model.tokenizer.endOfGenerationIDs.contains(token) { return nil }
            state.sampler.accept(token)
            return GeneratedToken(id: token, text: state.detokenizer.append(token))
        }
    }

    public func isContextFull(_ id: Int) -> Bool {
        guard let state = states[id] else { return false }
        return state.session.position >= contextLength - 1
    }

    /// Returns the request's session to the pool and the text its detokenizer held back.
    public func end(_ id: Int) -> String {
        guard let state = states.removeValue(forKey: id) else { return "" }
        freeSessions.append(state.session)
        return state.detokenizer.finish()
    }

    /// Drops the sessions kept for reuse.
    public func memoryPressure() -> Int {
        defer { freeSessions.removeAll() }
        return freeSessions.reduce(0) { $0 + $1.cache.byteCount + $1.scratchByteCount }
    }

    private func state(_ id: Int) throws -> RequestState {
        guard let state = states[id] else {
            throw LanguageModelError(.invalidInput, "request \(id) has not begun (or has ended) in the model engine")
        }
        return state
    }
}
