import EmberCore

/// Ember's policy: as fast as a person needs, as cheap as the phone allows.
///
/// - Prompts run on every thread with a performance hint: time to first token is what people feel.
/// - Decoding is memory-bound, so extra cores add power but little speed: the policy measures
///   token times at a few thread counts and keeps the fewest within `threadTolerance` of the best.
/// - Tokens are paced to a target rate (interactive well above reading speed, background slower)
///   with short gaps; the OS's governor then settles on lower clocks, where a token costs less
///   energy (E ∝ V²). Gaps stay short, so the clocks never fall to the floor.
/// - Heat: as the thermal headroom forecast rises, interactive replies slow toward reading speed
///   on one thread, pausing only at the edge of SEVERE; background work waits for cool periods.
/// - Battery: background work waits for the charger when the battery is low or battery saver is
///   on, unless its deadline would be missed.
/// - Deadlines: background work whose slack runs out runs unpaced, whatever the conditions.
/// - Background replies are decoded together, up to `backgroundBatch` at a time: a decode step
///   reads every weight whatever the number of sequences, so a batch of four costs the memory
///   traffic of one token for four.
public struct AdaptivePolicy: SchedulingPolicy {
    public struct Configuration: Sendable, Equatable {
        /// Interactive decode rate when cool: comfortably above reading speed (≈ 5–8 tokens/s).
        public var interactiveTokensPerSecond = 30.0
        /// Interactive decode rate when hot: about reading speed.
        public var readingTokensPerSecond = 10.0
        /// Background decode rate.
        public var backgroundTokensPerSecond = 15.0
        /// Forecast headroom from which background work waits and interactive work slows.
        public var cautionHeadroom = 0.75
        /// Forecast headroom from which interactive work runs at reading speed on one thread.
        public var hotHeadroom = 0.88
        /// Headroom (now) from which even interactive work pauses.
        public var pauseHeadroom = 0.96
        /// Background work waits for the charger below this battery level (or in battery saver).
        public var deferBelowBatteryPercent = 30.0
        /// Remaining work is estimated × this before comparing with the deadline.
        public var deadlineSafetyFactor = 1.5
        /// Thread counts within this fraction of the fastest decode are equally good.
        public var threadTolerance = 0.08
        /// Tokens measured per thread count before choosing.
        public var calibrationTokensPerCount = 4
        /// Interactive prompts run at this fraction of the reference prompt speed: a little slower
        /// than a cool, racing runtime's first prompt, never slower than a warm one's.
        public var interactivePrefillSpeed = 0.75
        /// Background prompts run at this fraction of the reference prompt speed (lower clocks).
        public var backgroundPrefillSpeed = 0.35
        /// Longest background prompt step while the screen is on: an interactive request that
        /// arrives waits at most about this long.
        public var backgroundStepSeconds = 0.06
        /// How long a deferred background request waits before the policy looks again.
        public var deferralSeconds = 10.0
        /// Background requests decoded together in one step (bounded by what the engine holds).
        public var backgroundBatch = 4

        public init() {}
    }

    public var configuration: Configuration
    public var name: String { "adaptive" }

    /// Mean seconds per decoded token, by thread count.
    private var decodeSeconds: [Int: (total: Double, count: Int)] = [:]
    /// Prompt tokens per second (moving average).
    private var prefillRate: Double?
    /// Prompt tokens per second of the first, boosted chunk on the default threads.
    private var referencePrefillRate: Double?
    private var chosenThreads: Int?
    private var calibrationStep = 0
    /// Earliest time of the next token, per request.
    private var nextTokenTime: [Int: Double] = [:]

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The decode thread count in use (nil while still measuring).
    public var decodeThreads: Int? { chosenThreads }

    public mutating func record(_ outcome: StepOutcome) {
        switch outcome.kind {
        case .decode:
            // Thread counts are compared on single-sequence steps.
            guard outcome.tokens == 1 else { return }
            var entry = decodeSeconds[outcome.threads] ?? (0, 0)
            entry.total += outcome.seconds
            entry.count += 1
            decodeSeconds[outcome.threads] = entry
        case .prefill:
            guard outcome.seconds > 0 else { return }
            let rate = Double(outcome.tokens) / outcome.seconds
            prefillRate = prefillRate.map { 0.7 * $0 + 0.3 * rate } ?? rate
            if referencePrefillRate == nil { referencePrefillRate = rate }
        }
    }

    public mutating func decide(_ context: SchedulingContext) -> SchedulingDecision {
        let maximum = max(1, context.maximumThreads)
        let pending = Set(context.pending.map(\.id))
        nextTokenTime = nextTokenTime.filter { pending.contains($0.key) }
        let interactive = context.pending.filter { $0.requestClass == .interactive }
        if let request = mostUrgent(interactive) {
            return decideInteractive(request, context, maximum: maximum)
        }
        let background = context.pending.filter { $0.requestClass == .background }
        guard let request = mostUrgent(background) else { return .idle(until: .infinity, reason: .noWork) }
        return decideBackground(request, context, maximum: maximum)
    }

    private mutating func decideInteractive(_ request: RequestSnapshot, _ context: SchedulingContext,
                                            maximum: Int) -> SchedulingDecision {
        if !request.isPrefilled {
            return prefill(request, context, maximum: maximum, speed: configuration.interactivePrefillSpeed)
        }
        if context.thermalHeadroom >= configuration.pauseHeadroom {
            return .idle(until: context.time + 0.5, reason: .thermalPause)
        }
        if let threads = calibrationThreads(maximum: maximum) { return .run(id: request.id, threads: threads, hint: .none) }
        if let next = nextTokenTime[request.id], context.time < next - 1e-9 {
            return .idle(until: next, reason: .pacing)
        }
        let headroom = context.forecastHeadroom
        var rate = configuration.interactiveTokensPerSecond
        var threads = chosenThreads ?? maximum
        if headroom >= configuration.hotHeadroom {
            rate = configuration.readingTokensPerSecond
            threads = 1
        } else if context.isPowerSaveMode {
            rate = configuration.readingTokensPerSecond
        } else if headroom >= configuration.cautionHeadroom {
            rate = (configuration.interactiveTokensPerSecond + configuration.readingTokensPerSecond) / 2
        }
        nextTokenTime[request.id] = context.time + 1 / rate
        return .run(id: request.id, threads: threads, hint: .none)
    }

    /// A prompt chunk. The first one ever runs on the default threads with a boost and sets the
    /// reference speed (what a racing runtime gets); later ones spread over every core with an
    /// ADPF target of `speed` × that reference, so the OS can lower the clocks — more cores at
    /// lower voltage do the same work for less energy.
    ///
    /// Background chunks are short while the screen is on, so an interactive request that arrives
    /// waits little; with the screen off they are full size (fewer weight reads).
    private func prefill(_ request: RequestSnapshot, _ context: SchedulingContext, maximum: Int, speed: Double) -> SchedulingDecision {
        guard let reference = referencePrefillRate else { return .run(id: request.id, threads: maximum, hint: .boost) }
        let short = request.requestClass == .background && context.isScreenOn
        let sized = max(4, Int(configuration.backgroundStepSeconds * reference * speed))
        let limit = short ? min(sized, context.prefillChunkTokens) : context.prefillChunkTokens
        let chunk = min(limit, request.promptTokens - request.prefilledTokens)
        let threads = max(maximum, context.availableCores)
        return .run(id: request.id, threads: threads, hint: .target(seconds: Double(chunk) / (reference * speed)), chunk: chunk)
    }

    private mutating func decideBackground(_ request: RequestSnapshot, _ context: SchedulingContext,
                                           maximum: Int) -> SchedulingDecision {
        // Paced background decoding needs little bandwidth: one core is enough and costs least.
        let threads = 1
        let slack = self.slack(request, context)
        let urgent = slack < 0
        if !urgent {
            if context.forecastHeadroom >= configuration.cautionHeadroom {
                return .idle(until: min(context.time + configuration.deferralSeconds, latestStart(request, context)),
                              reason: .thermalDeferral)
            }
            if !context.isCharging && (context.isPowerSaveMode || context.batteryPercent < configuration.deferBelowBatteryPercent) {
                return .idle(until: min(context.time + configuration.deferralSeconds * 6, latestStart(request, context)),
                             reason: .batteryDeferral)
            }
        }
        if !request.isPrefilled {
            return prefill(request, context, maximum: maximum, speed: urgent ? 1 : configuration.backgroundPrefillSpeed)
        }
        if let calibration = calibrationThreads(maximum: maximum) { return .run(id: request.id, threads: calibration, hint: .none) }
        if urgent { return .run(id: request.id, threads: maximum, hint: .none) }
        // The batch: the most urgent background requests, as many as the engine holds. Their
        // prompts are processed first (one after another), then their tokens come together.
        let limit = max(1, min(configuration.backgroundBatch, context.maximumDecodeBatch))
        let batch = urgencyOrder(context.pending.filter { $0.requestClass == .background }).prefix(limit)
        if let waiting = batch.first(where: { !$0.isPrefilled }), self.slack(waiting, context) >= 0 {
            return prefill(waiting, context, maximum: maximum, speed: configuration.backgroundPrefillSpeed)
        }
        let ready = batch.filter(\.isPrefilled)
        let due = ready.compactMap { nextTokenTime[$0.id] }.max() ?? -.infinity
        if context.time < due - 1e-9 {
            return .idle(until: due, reason: .pacing)
        }
        for member in ready { nextTokenTime[member.id] = context.time + 1 / configuration.backgroundTokensPerSecond }
        if ready.count == 1 { return .run(id: request.id, threads: threads, hint: .none) }
        return .decodeBatch(ids: ready.map(\.id), threads: threads, hint: .none)
    }

    /// During calibration, the thread count of the next decode step; nil once chosen.
    private mutating func calibrationThreads(maximum: Int) -> Int? {
        if chosenThreads != nil { return nil }
        let candidates = Array(Set([maximum, (maximum + 1) / 2, 1])).sorted(by: >)
        let perCount = configuration.calibrationTokensPerCount
        if calibrationStep < perCount * candidates.count {
            let threads = candidates[calibrationStep % candidates.count]
            calibrationStep += 1
            return threads
        }
        let times = candidates.compactMap { count -> (Int, Double)? in
            guard let entry = decodeSeconds[count], entry.count > 0 else { return nil }
            return (count, entry.total / Double(entry.count))
        }
        guard let best = times.map(\.1).min() else {
            chosenThreads = maximum
            return nil
        }
        chosenThreads = times.filter { $0.1 <= best * (1 + configuration.threadTolerance) }.map(\.0).min() ?? maximum
        return nil
    }

    /// Seconds to spare before the deadline if the rest of the work started now at the paced rate
    /// (infinite without a deadline).
    func slack(_ request: RequestSnapshot, _ context: SchedulingContext) -> Double {
        guard let deadline = request.deadline else { return .infinity }
        return deadline - context.time - estimatedSeconds(request) * configuration.deadlineSafetyFactor
    }

    /// The latest time the request can start and still meet its deadline (with the safety factor).
    func latestStart(_ request: RequestSnapshot, _ context: SchedulingContext) -> Double {
        guard let deadline = request.deadline else { return .infinity }
        return max(context.time, deadline - estimatedSeconds(request) * configuration.deadlineSafetyFactor)
    }

    /// Seconds the rest of `request` takes at the background pace.
    func estimatedSeconds(_ request: RequestSnapshot) -> Double {
        let promptLeft = Double(max(0, request.promptTokens - request.prefilledTokens))
        let tokensLeft = Double(max(0, request.maxTokens - request.generatedTokens))
        let prefill = promptLeft / (prefillRate ?? 100)
        return prefill + tokensLeft / configuration.backgroundTokensPerSecond
    }
}
