import EmberCore

/// How urgent a request is: interactive work has a person waiting for it; background work has a
/// deadline, or none.
public enum RequestClass: String, Sendable, Codable, Equatable, CaseIterable {
    case interactive
    case background
}

/// What a policy knows about one pending request.
public struct RequestSnapshot: Sendable, Equatable {
    public var id: Int
    public var requestClass: RequestClass
    /// Higher runs first within a class.
    public var priority: Int
    public var arrival: Double
    /// Absolute time by which it must finish, if any.
    public var deadline: Double?
    /// Prompt tokens (known once tokenized; an estimate before).
    public var promptTokens: Int
    public var prefilledTokens: Int
    public var generatedTokens: Int
    public var maxTokens: Int

    public init(id: Int, requestClass: RequestClass, priority: Int = 0, arrival: Double, deadline: Double? = nil,
                promptTokens: Int, prefilledTokens: Int = 0, generatedTokens: Int = 0, maxTokens: Int) {
        self.id = id
        self.requestClass = requestClass
        self.priority = priority
        self.arrival = arrival
        self.deadline = deadline
        self.promptTokens = promptTokens
        self.prefilledTokens = prefilledTokens
        self.generatedTokens = generatedTokens
        self.maxTokens = maxTokens
    }

    public var isPrefilled: Bool { prefilledTokens >= promptTokens }
}

/// What a policy sees when it picks the next step: the queue and what the platform reports.
public struct SchedulingContext: Sendable {
    public var time: Double
    /// Requests that have arrived and are not finished.
    public var pending: [RequestSnapshot]
    public var thermalStatus: ThermalStatus
    /// Thermal headroom now (Android `getThermalHeadroom(0)`; 1.0 is SEVERE).
    public var thermalHeadroom: Double
    /// Thermal headroom forecast `forecastSeconds` ahead.
    public var forecastHeadroom: Double
    public var batteryPercent: Double
    public var isCharging: Bool
    public var isPowerSaveMode: Bool
    /// Threads a runtime uses by default (the big cores).
    public var maximumThreads: Int
    /// Every core of the device (Android `Runtime.availableProcessors()`).
    public var availableCores: Int
    /// Prompt tokens one prefill step processes.
    public var prefillChunkTokens: Int
    /// Whether the screen is on (Android `PowerManager.isInteractive()`; iOS: app in the foreground).
    public var isScreenOn = true
    /// Most sequences the engine can decode in one step (KV caches it can hold at once within the
    /// memory budget); 1 turns batched decoding off.
    public var maximumDecodeBatch = 1
    /// Forecast headroom of the phone without this app's work — what the environment alone
    /// (ambient, screen, charger, other apps) causes — when the platform can tell: the simulator
    /// from its device model. Nil on a real phone: the policy then estimates it from the headroom
    /// it observes after idle stretches.
    public var environmentHeadroom: Double?

    public init(time: Double, pending: [RequestSnapshot], thermalStatus: ThermalStatus, thermalHeadroom: Double,
                forecastHeadroom: Double, batteryPercent: Double, isCharging: Bool, isPowerSaveMode: Bool,
                maximumThreads: Int, availableCores: Int? = nil, prefillChunkTokens: Int = 128) {
        self.availableCores = availableCores ?? maximumThreads
        self.prefillChunkTokens = prefillChunkTokens
        self.time = time
        self.pending = pending
        self.thermalStatus = thermalStatus
        self.thermalHeadroom = thermalHeadroom
        self.forecastHeadroom = forecastHeadroom
        self.batteryPercent = batteryPercent
        self.isCharging = isCharging
        self.isPowerSaveMode = isPowerSaveMode
        self.maximumThreads = maximumThreads
    }

    /// Reads the platform's sources.
    public init(time: Double, pending: [RequestSnapshot], thermal: some ThermalSource, power: some PowerSource,
                maximumThreads: Int, availableCores: Int? = nil, prefillChunkTokens: Int = 128, forecastSeconds: Double = 30) {
        self.init(time: time, pending: pending, thermalStatus: thermal.thermalStatus,
                  thermalHeadroom: thermal.thermalHeadroom(forecastSeconds: 0),
                  forecastHeadroom: thermal.thermalHeadroom(forecastSeconds: forecastSeconds),
                  batteryPercent: power.batteryPercent, isCharging: power.isCharging,
                  isPowerSaveMode: power.isPowerSaveMode, maximumThreads: maximumThreads,
                  availableCores: availableCores, prefillChunkTokens: prefillChunkTokens)
    }
}

/// The person reading a streamed reply.
public enum Reader {
    /// How fast a person reads: 238 words a minute (Brysbaert 2019, "How many words do we read per
    /// minute?", J. Memory and Language 109: adults' silent reading of non-fiction) at about 1.4
    /// tokens a word (100 tokens ≈ 60–80 English words, Gemini API token docs) ≈ 5.7 tokens/s.
    public static let tokensPerSecond = 5.7

    /// When a reader who starts at `firstToken` has read a reply of `tokens` that ended at
    /// `lastToken`: the later of its last token and its length at reading speed.
    public static func finishedReading(firstToken: Double, lastToken: Double, tokens: Int) -> Double {
        max(lastToken, firstToken + Double(tokens) / tokensPerSecond)
    }
}

/// Why the scheduler left the CPU idle.
public enum IdleReason: String, Sendable, Codable, Equatable, CaseIterable {
    /// Nothing to do.
    case noWork = "no_work"
    /// A short gap between tokens: the reply is already fast enough, and lower clocks cost less per token.
    case pacing
    /// Background work waits for the phone to cool.
    case thermalDeferral = "thermal_deferral"
    /// Background work waits for the charger (battery low or battery saver on).
    case batteryDeferral = "battery_deferral"
    /// Even interactive work pauses briefly: the phone is at CRITICAL, or the app's own heat is
    /// about to take it to SEVERE while the reader still has text to read.
    case thermalPause = "thermal_pause"
}

/// A hint to the OS about the step's performance needs (Android ADPF `PerformanceHintManager`;
/// on iOS, thread QoS).
public enum PerformanceHint: Sendable, Equatable {
    /// No hint: the governor follows utilisation.
    case none
    /// Top clocks at once (`uclamp.min`, a short target duration).
    case boost
    /// A target duration: the OS picks the lowest clocks that finish the step within it.
    case target(seconds: Double)
}

extension PerformanceHint {
    /// Whether the hint asks for top clocks at once.
    public var isBoost: Bool { self == .boost }

    /// The target duration, if the hint sets one.
    public var targetSeconds: Double? {
        if case .target(let seconds) = self { return seconds }
        return nil
    }
}

/// The next step on the one model owner.
public enum SchedulingDecision: Sendable, Equatable {
    /// Run one step (a prompt chunk of at most `chunk` tokens, or one token) of request `id` on
    /// `threads`, with a hint to the OS.
    case run(id: Int, threads: Int, hint: PerformanceHint, chunk: Int? = nil)
    /// Decode one token of each of the requests `ids` (all past their prompts) in one pass over
    /// the weights, on `threads`.
    case decodeBatch(ids: [Int], threads: Int, hint: PerformanceHint)
    /// Leave the CPU idle until `until`, or until a new request or event arrives.
    case idle(until: Double, reason: IdleReason)
}

/// What a step cost, reported back to the policy.
public struct StepOutcome: Sendable, Equatable {
    public enum Kind: String, Sendable { case prefill, decode }
    public var id: Int
    public var kind: Kind
    public var threads: Int
    /// Tokens the step processed: prompt tokens, or one per sequence of a decode step.
    public var tokens: Int
    public var seconds: Double

    public init(id: Int, kind: Kind, threads: Int, tokens: Int, seconds: Double) {
        self.id = id
        self.kind = kind
        self.threads = threads
        self.tokens = tokens
        self.seconds = seconds
    }
}

/// Picks the next step from the pending requests and the platform's state.
public protocol SchedulingPolicy {
    var name: String { get }
    mutating func decide(_ context: SchedulingContext) -> SchedulingDecision
    /// Learns from what a step cost (thread counts, speeds).
    mutating func record(_ outcome: StepOutcome)
}

extension SchedulingPolicy {
    public mutating func record(_ outcome: StepOutcome) {}
}

/// Interactive before background; then higher priority; then earlier deadline; then arrival.
public func mostUrgent(_ requests: [RequestSnapshot]) -> RequestSnapshot? {
    requests.min(by: isMoreUrgent)
}

/// `requests`, most urgent first (the order of `mostUrgent`).
public func urgencyOrder(_ requests: [RequestSnapshot]) -> [RequestSnapshot] {
    requests.sorted(by: isMoreUrgent)
}

private func isMoreUrgent(_ left: RequestSnapshot, _ right: RequestSnapshot) -> Bool {
    if left.requestClass != right.requestClass { return left.requestClass == .interactive }
    if left.priority != right.priority { return left.priority > right.priority }
    let leftDeadline = left.deadline ?? .infinity, rightDeadline = right.deadline ?? .infinity
    if leftDeadline != rightDeadline { return leftDeadline < rightDeadline }
    if left.arrival != right.arrival { return left.arrival < right.arrival }
    return left.id < right.id
}

/// Today's runtimes: run whatever is pending, most urgent first, on every thread, as fast as possible.
public struct RacePolicy: SchedulingPolicy {
    public init() {}
    public var name: String { "race" }

    public func decide(_ context: SchedulingContext) -> SchedulingDecision {
        guard let next = mostUrgent(context.pending) else { return .idle(until: .infinity, reason: .noWork) }
        return .run(id: next.id, threads: context.maximumThreads, hint: .none)
    }
}
