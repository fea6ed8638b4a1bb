import EmberLM
import EmberTokenizers

/// Produces the tokens of simulated requests: really (a language model) or as counts only.
///
/// The simulation charges time and energy from the work model either way, so runs are
/// deterministic whatever machine they run on.
public protocol TokenEngine {
    /// Prepares `request`; returns how many prompt tokens it has.
    mutating func begin(_ request: SimulatedRequest) throws -> Int
    /// The next token's text, or nil once the reply has ended.
    mutating func next(_ request: SimulatedRequest) throws -> String?
    /// The next token of each of `requests`, decoded together (one pass over the weights).
    mutating func next(batch requests: [SimulatedRequest]) throws -> [String?]
    /// Releases what `request` held (its KV cache); returns text held back until the end (an
    /// incomplete character), usually empty.
    mutating func end(_ request: SimulatedRequest) -> String
    /// A memory warning: drop what can be rebuilt; returns the bytes released.
    mutating func memoryPressure() -> Int
}

extension TokenEngine {
    public mutating func memoryPressure() -> Int { 0 }

    public mutating func next(batch requests: [SimulatedRequest]) throws -> [String?] {
        try requests.map { try next($0) }
    }
}

/// Counts only: prompts of `prompt_tokens` (or about four characters a token), replies of
/// `response_tokens`.
public struct CostModelEngine: TokenEngine {
    public init() {}

    public func begin(_ request: SimulatedRequest) -> Int {
        request.promptTokens
    }

    public func next(_ request: SimulatedRequest) -> String? {
        request.generatedTokens < min(request.responseTokens, request.maxTokens) ? "" : nil
    }

    public func end(_ request: SimulatedRequest) -> String { "" }
}

/// Real tokens from a language model: chat-formatted prompts, seeded sampling, one KV cache per
/// request in flight.
public final class LanguageModelEngine: TokenEngine {
    public let model: LanguageModel
    let sampling: SamplingParameters
    let contextLength: Int
    let threadCount: Int
    private var states: [Int: RequestState] = [:]
    /// Sessions of finished requests, kept for the next ones (allocating a KV cache and scratch
    /// per request would dominate short replies).
    private var freeSessions: [InferenceSession] = []

    /// A class, so the sampler and detokenizer change in place token after token.
    private final class RequestState {
        let session: InferenceSession
        var sampler: Sampler
        var detokenizer: StreamingDetokenizer
        var nextToken: Int32

        init(session: InferenceSession, sampler: Sampler, detokenizer: StreamingDetokenizer, nextToken: Int32) {
            self.session = session
            self.sampler = sampler
            self.detokenizer = detokenizer
            self.nextToken = nextToken
        }
    }

    public init(model: LanguageModel, sampling: SamplingParameters, contextLength: Int = 2048, threadCount: Int) {
        self.model = model
        self.threadCount = threadCount
        self.sampling = sampling
        self.contextLength = min(contextLength, model.configuration.trainedContextLength)
    }

    public func begin(_ request: SimulatedRequest) throws -> Int {
        let text = request.prompt ?? SyntheticText.prompt(for: request)
        var tokens = try model.tokenize(model.chatTemplate != nil ? .chat([.init(role: .user, content: text)]) : .text(text))
        let limit = contextLength - request.maxTokens - 1
        if tokens.count > limit { tokens = Array(tokens.suffix(max(1, limit))) }
        let session = freeSessions.popLast()
            ?? InferenceSession(model: model.transformer, contextLength: contextLength, threadCount: threadCount)
        session.reset()
        var parameters = sampling
        parameters.seed = sampling.seed &+ UInt64(request.id)
        var sampler = Sampler(parameters: parameters)
        for token in tokens { sampler.accept(token) }
        var next: Int32 = 0
        try session.evaluate(tokens, logits: .last) { _, logits in next = sampler.sample(logits) }
        states[request.id] = RequestState(session: session, sampler: sampler,
                                          detokenizer: StreamingDetokenizer(tokenizer: model.tokenizer), nextToken: next)
        return tokens.count
    }

    public func next(_ request: SimulatedRequest) throws -> String? {
        try next(batch: [request])[0]
    }

    /// Each request's pending token (sampled after its previous step) is its text now; the
    /// requests that go on evaluate theirs together and sample the token after.
    public func next(batch requests: [SimulatedRequest]) throws -> [String?] {
        var texts = [String?](repeating: nil, count: requests.count)
        var continuing: [RequestState] = []
        for (index, request) in requests.enumerated() {
            guard let state = states[request.id] else { continue }
            let token = state.nextToken
            if model.tokenizer.endOfGenerationIDs.contains(token) || request.generatedTokens >= request.maxTokens
                || state.session.position >= contextLength - 1 {
                continue
            }
            texts[index] = state.detokenizer.append(token)
            state.sampler.accept(token)
            continuing.append(state)
        }
        try InferenceSession.decode(continuing.map(\.nextToken), sessions: continuing.map(\.session)) { index, logits in
            continuing[index].nextToken = continuing[index].sampler.sample(logits)
        }
        return texts
    }

    /// Drops the KV caches kept for reuse.
    public func memoryPressure() -> Int {
        defer { freeSessions.removeAll() }
        return freeSessions.reduce(0) { $0 + $1.cache.byteCount + $1.scratchByteCount }
    }

    public func end(_ request: SimulatedRequest) -> String {
        guard let state = states.removeValue(forKey: request.id) else { return "" }
        freeSessions.append(state.session)
        return state.detokenizer.finish()
    }
}

/// Deterministic filler text for prompts given only as a token count.
enum SyntheticText {
    static let sentences = [
        "The team met on Tuesday to review the launch plan and agreed to move the beta by one week.",
        "Battery life matters more than peak speed when the phone is used all day.",
        "Buy oat milk, two lemons, fresh basil and a loaf of rye bread on the way home.",
        "The museum opens at nine, and the guided tour of the old harbour starts at eleven.",
        "Remember to send the signed lease to the landlord before the end of the month.",
        "The recipe needs the onions softened slowly for twenty minutes before the stock goes in.",
        "Our flight lands at six in the evening, so the hotel check-in should be easy.",
        "The quarterly report shows revenue up eight percent while support costs stayed flat.",
    ]

    /// About `request.promptTokens` tokens of notes-like text (roughly 0.75 words a token).
    static func prompt(for request: SimulatedRequest) -> String {
        var words = 0
        var text = request.kind == .summarize ? "Summarize this note in two sentences.\n\n" : ""
        var index = request.id
        let target = Int(Double(request.promptTokens) * 0.75)
        while words < target {
            let sentence = sentences[index % sentences.count]
            text += sentence + " "
            words += sentence.split(separator: " ").count
            index += 3
        }
        return text
    }
}
