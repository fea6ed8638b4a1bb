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
///   on one thread; background work waits for cool periods. Heat is attributed: the policy
///   compares the forecast with the environment's alone (the phone without its work) and holds
///   nothing back for heat it does not cause. With the environment alone hot, interactive replies
///   still run, at the lowest-power setting — or, with the environment alone just below the
///   SEVERE line, at the paced rate (seconds above the line last as long as the work does); only
///   CRITICAL pauses them, briefly, re-checking, and
///   only what the person is not waiting for (a reply ahead of its reader; a prompt or a caught-up
///   reader only at imminent shutdown); the app's own heat at the edge of SEVERE pauses a reply
///   only while its reader is behind it.
/// - No starvation: while the interactive request is held (paced or paused), background work
///   urgent by its deadline, or waiting longer than `maximumWaitSeconds`, runs in the gaps.
/// - Battery: background work does not wait for the charger. Waiting saves no energy — the work
///   costs the same later, and the phone is awake for it either way — it only moves the drain,
///   and work still waiting when the user stops is work not done. Nor does battery saver slow
///   interactive replies: every paced token already runs at the clocks of least energy per token
///   (an ADPF target of `efficientTokenSlowdown` × its fastest time), and a slower pace would only
///   finish the reply later.
/// - Deadlines: background work whose slack runs out runs unpaced, whatever the conditions. The
///   slack is queue-aware: a request's counts the work of the background requests ahead of it.
/// - Background replies are decoded together, up to `backgroundBatch` at a time: a decode step
///   reads every weight whatever the number of sequences, so a batch of four costs the memory
///   traffic of one token for four.
public struct AdaptivePolicy: SchedulingPolicy {
    public struct Configuration: Sendable, Equatable {
        /// Interactive decode rate when cool: comfortably above reading speed (≈ 5–8 tokens/s).
        public var interactiveTokensPerSecond = 30.0
        /// Interactive decode rate when hot: about reading speed.
        public var readingTokensPerSecond = 10.0
        /// Background decode rate while the screen is off (steps per second; a batch step decodes
        /// one token of each); with it on, `interactiveTokensPerSecond`.
        public var backgroundTokensPerSecond = 15.0
        /// Forecast headroom from which background work waits and interactive work slows.
        public var cautionHeadroom = 0.75
        /// Forecast headroom from which interactive work runs at reading speed on one thread.
        public var hotHeadroom = 0.88
        /// Headroom (now) from which interactive work pauses while its reader is behind, when the
        /// heat is the app's own (the environment alone is below `pauseHeadroom − attributionMargin`).
        public var pauseHeadroom = 0.96
        /// Forecast headroom of the environment alone just below the SEVERE line (headroom 1),
        /// where the idle skin hovers under it: any work's heat then holds the skin above the line
        /// for as long as the work runs, whatever its power, and replies run at the paced rate
        /// (`interactiveTokensPerSecond`, or the warm rate past `cautionHeadroom`), not at reading
        /// speed on one thread. In `ember sim fuzz`, replies at reading speed on one thread in
        /// rooms that held an idle phone near the line spread over 10–28 s what race did in
        /// 2.5–6 s, and spent 3–5 s more at SEVERE. At or above the line the rule holds
        /// (the lowest-power setting: the skin is past the line with or without the work).
        public var environmentAtLine = 0.96..<1.0
        /// How far below `pauseHeadroom` the environment alone must be for pausing to help.
        public var attributionMargin = 0.04
        /// A pause at CRITICAL lasts this long before the policy looks again. At CRITICAL only a
        /// reply ahead of its reader pauses (the person does not wait for it); a prompt, or a reply
        /// its reader has caught up with, pauses only from EMERGENCY (imminent shutdown). A paused
        /// first token delays its question and every later one of the conversation: in `ember sim
        /// fuzz`, conversations in a hot car lost a question (fewer answers for the same screen
        /// time) to up to 10 s of paused prompts per question, while the pause let the phone cool
        /// no more than the same work done 10 s later.
        public var criticalPauseSeconds = 2.0
        /// The most an interactive request is paused at CRITICAL in all; then it runs at the
        /// lowest-power setting.
        public var maximumPauseSeconds = 10.0
        /// Interactive prompts run at this fraction of the reference prompt speed when the
        /// environment alone is hot: the reference speed, as when cool. The person waits for the
        /// prompt (a slower one delays the whole conversation), the throttled phone's clocks are
        /// already low, and near SEVERE a short burst of heat holds the skin above the line for
        /// less time than the same heat spread out (fuzz seed 84 on the low-end phone: half
        /// speed added 26 s at SEVERE beyond race's).
        public var hotPrefillSpeed = 1.0
        /// How fast a person reads a streamed reply (`Reader.tokensPerSecond`). A reply ahead of
        /// its reader can wait.
        public var readerTokensPerSecond = Reader.tokensPerSecond
        /// Aging: a background request waiting this long (half an hour) is no longer deferred for heat
        /// or the charger; it runs at the background pace.
        public var maximumWaitSeconds = 1800.0
        /// Remaining work is estimated × this before comparing with the deadline.
        public var deadlineSafetyFactor = 1.5
        /// Thread counts within this fraction of the fastest decode are equally good.
        public var threadTolerance = 0.08
        /// A paced token's ADPF target duration, as a multiple of the fastest single-sequence
        /// token seen on its thread count. Energy per token against clock frequency is convex with
        /// an interior minimum (De Vogeleer et al., arXiv 1401.4655; ../shared/research/power-thermal.md
        /// §5): above it E ∝ V² grows with the clock, below it the voltage no longer falls while the
        /// uncore, static and board power run longer. Memory-bound decode slows about as the clock
        /// falls (a little less), so the minimum — about 40–50 % of the top clock on phone cores —
        /// is where a token takes about twice its fastest time.
        public var efficientTokenSlowdown = 2.0
        /// Tokens measured per thread count before choosing.
        public var calibrationTokensPerCount = 4
        /// Interactive prompts run at this fraction of the reference prompt speed (what a cool,
        /// racing runtime gets), spread over every core so the clocks are lower. The person waits
        /// for the prompt, unlike for tokens ahead of their reading: a slower prompt delays the
        /// first token and every follow-up question after it (fuzz seed 48: at 0.75 ×, one
        /// question fewer fitted in the conversation, and the screen's energy divided among fewer).
        public var interactivePrefillSpeed = 1.0
        /// Background prompts run at this fraction of the reference prompt speed (lower clocks)
        /// while the screen is off (with it on, at `screenOnBackgroundPrefillSpeed`): the clocks of
        /// least energy, about half the top clock (as for tokens, `efficientTokenSlowdown`; prompt
        /// work slows as the clock falls). Slower costs more, not less: below that clock the
        /// static, uncore and awake-board power run longer than the voltage saves — at 0.35 × a
        /// throttled phone's background prompts spent more than race's (`ember sim fuzz`: a
        /// screen-off summarize batch in a 41 °C room on the tablet, 10.2 J per request against 9.3 J).
        public var backgroundPrefillSpeed = 0.5
        /// Background prompts with the screen on: nobody waits for them, but the display and the
        /// awake board are spent either way.
        public var screenOnBackgroundPrefillSpeed = 0.75
        /// Longest background prompt step while the screen is on: an interactive request that
        /// arrives waits at most about this long (or `minimumBackgroundStepTokens`, if longer).
        public var backgroundStepSeconds = 0.06
        /// Fewest prompt tokens in a background step. A prompt step reads every weight once,
        /// whatever its length: on a slow or throttled phone 60 ms held 4 tokens, and the weights
        /// were read once per 4 tokens instead of once per 128 (race's chunk) — the background
        /// prompt cost more than race's (`ember sim fuzz`: on throttled phones, background prompt
        /// energy up to 10–25 % above race's, and whole-phone energy per request above race's).
        /// A quarter of the chunk reads the weights at most 4 × as often as race, a small part of
        /// a step's energy, and keeps an arriving question's wait a quarter of race's.
        public var minimumBackgroundStepTokens = 32
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
    /// Seconds of the fastest single-sequence decode step seen, by thread count.
    private var fastestDecodeSeconds: [Int: Double] = [:]
    /// Seconds of the latest single-sequence decode step, by thread count (as throttled now).
    private var latestDecodeSeconds: [Int: Double] = [:]
    /// Prompt tokens per second (moving average).
    private var prefillRate: Double?
    /// Prompt tokens per second of the latest boosted chunk on the default threads: what a racing
    /// runtime gets.
    private var referencePrefillRate: Double?
    /// The thermal status when `referencePrefillRate` was measured; nil before any measurement.
    private var referenceStatus: ThermalStatus?
    /// Whether the step last decided is a boosted chunk that measures the reference.
    private var measuringReference = false
    private var chosenThreads: Int?
    private var calibrationStep = 0
    /// Earliest time of the next token, per request.
    private var nextTokenTime: [Int: Double] = [:]
    /// When each interactive reply's first token was seen (the reader starts there).
    private var firstTokenSeen: [Int: Double] = [:]
    /// Seconds each interactive request was paused at CRITICAL.
    private var pausedSeconds: [Int: Double] = [:]
    /// When the policy last ran work (heat attribution on a real phone).
    private var lastWorkTime = -Double.infinity
    /// Forecast headroom observed after the CPU had been idle `settleSeconds`: the environment's
    /// estimate when the platform does not give it.
    private var settledIdleHeadroom: Double?
    /// Idle seconds after which the observed headroom is taken as the environment's.
    private let settleSeconds = 30.0
    /// Whether some background request's slack is gone (set per decision): the phone has more
    /// work than time, and every step runs at full speed — CPU time spent at the efficient
    /// clocks is taken from a deadline.
    private var overloaded = false
    /// Each pending background request's queue-aware slack (`queueSlacks`), as of `queueSlackTime`.
    private var queueSlack: [Int: Double] = [:]
    private var queueSlackTime = -Double.infinity

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
            latestDecodeSeconds[outcome.threads] = outcome.seconds
            fastestDecodeSeconds[outcome.threads] = min(fastestDecodeSeconds[outcome.threads] ?? .infinity, outcome.seconds)
            var entry = decodeSeconds[outcome.threads] ?? (0, 0)
            entry.total += outcome.seconds
            entry.count += 1
            decodeSeconds[outcome.threads] = entry
        case .prefill:
            guard outcome.seconds > 0 else { return }
            let rate = Double(outcome.tokens) / outcome.seconds
            prefillRate = prefillRate.map { 0.7 * $0 + 0.3 * rate } ?? rate
            if measuringReference || referencePrefillRate == nil { referencePrefillRate = rate }
            measuringReference = false
        }
    }

    public mutating func decide(_ context: SchedulingContext) -> SchedulingDecision {
        let decision = choose(context)
        switch decision {
        case .run, .decodeBatch: lastWorkTime = context.time
        case .idle: break
        }
        return decision
    }

    /// The forecast headroom the environment alone causes: the platform's figure, else the
    /// headroom last observed after `settleSeconds` of idle CPU (never above the forecast now;
    /// 0 — all heat the app's — before any such observation).
    public mutating func environmentHeadroom(_ context: SchedulingContext) -> Double {
        if let known = context.environmentHeadroom { return known }
        if context.time - lastWorkTime >= settleSeconds { settledIdleHeadroom = context.forecastHeadroom }
        return min(context.forecastHeadroom, settledIdleHeadroom ?? 0)
    }

    private mutating func choose(_ context: SchedulingContext) -> SchedulingDecision {
        let maximum = max(1, context.maximumThreads)
        let pending = Set(context.pending.map(\.id))
        nextTokenTime = nextTokenTime.filter { pending.contains($0.key) }
        firstTokenSeen = firstTokenSeen.filter { pending.contains($0.key) }
        pausedSeconds = pausedSeconds.filter { pending.contains($0.key) }
        let environment = environmentHeadroom(context)
        let interactive = context.pending.filter { $0.requestClass == .interactive }
        let background = context.pending.filter { $0.requestClass == .background }
        queueSlack = queueSlacks(background, time: context.time,
                                 batch: min(configuration.backgroundBatch, context.maximumDecodeBatch))
        queueSlackTime = context.time
        overloaded = background.contains { slack($0, context) < 0 }
        for reply in interactive where reply.generatedTokens > 0 && firstTokenSeen[reply.id] == nil {
            firstTokenSeen[reply.id] = context.time
        }
        // A person waits for a first token; one reading a reply does not while the reply is ahead.
        // So the prompt with the least left to process (the first token it brings is nearest) runs
        // before replies ahead of their readers, and in their pacing gaps.
        let prompt = interactive.filter { !$0.isPrefilled }.min { left, right in
            let leftRemaining = left.promptTokens - left.prefilledTokens, rightRemaining = right.promptTokens - right.prefilledTokens
            return leftRemaining != rightRemaining ? leftRemaining < rightRemaining : mostUrgent([left, right])?.id == left.id
        }
        let reply = mostUrgent(interactive.filter(\.isPrefilled))
        var decision: SchedulingDecision
        if let prompt, reply.map({ isAheadOfReader($0, context) }) ?? true {
            decision = decideInteractive(prompt, context, maximum: maximum, environment: environment)
        } else if let reply {
            decision = decideInteractive(reply, context, maximum: maximum, environment: environment)
            if case .idle = decision, let prompt {
                decision = decideInteractive(prompt, context, maximum: maximum, environment: environment)
            }
        } else {
            guard let request = mostUrgent(background) else { return .idle(until: .infinity, reason: .noWork) }
            return decideBackground(request, context, maximum: maximum, environment: environment, force: false)
        }
        // A held interactive request never blocks background work that cannot wait longer.
        guard case .idle(let until, let reason) = decision, let waiting = mostPressing(background, context) else { return decision }
        if waiting.urgent {
            return decideBackground(waiting.request, context, maximum: maximum, environment: environment, force: true)
        }
        return .idle(until: min(until, waiting.wake), reason: reason)
    }

    /// The background request that waits least willingly: one past its latest start or its
    /// longest wait (urgent), else the one whose latest start or longest wait comes first.
    private func mostPressing(_ background: [RequestSnapshot], _ context: SchedulingContext)
        -> (request: RequestSnapshot, urgent: Bool, wake: Double)? {
        var best: (request: RequestSnapshot, urgent: Bool, wake: Double)?
        for request in urgencyOrder(background) {
            let wake = min(latestStart(request, context), request.arrival + configuration.maximumWaitSeconds)
            let urgent = slack(request, context) < 0 || isAged(request, context)
            if urgent { return (request, true, context.time) }
            if best == nil || wake < best!.wake { best = (request, false, wake) }
        }
        return best
    }

    /// Whether `request` has waited `maximumWaitSeconds` (aging: it is no longer deferred).
    func isAged(_ request: RequestSnapshot, _ context: SchedulingContext) -> Bool {
        context.time - request.arrival >= configuration.maximumWaitSeconds
    }

    private mutating func decideInteractive(_ request: RequestSnapshot, _ context: SchedulingContext,
                                            maximum: Int, environment: Double) -> SchedulingDecision {
        // Only CRITICAL (or worse) pauses interactive work, briefly (the policy looks again), and
        // only while the app's own heat is part of it (pausing lets the phone cool) and the
        // request has been held less than `maximumPauseSeconds` in all. At CRITICAL only a reply
        // ahead of its reader pauses: a pause of what the person waits for (a prompt, a reader
        // who caught up) delays the whole conversation, and the work's heat comes the same
        // seconds later. From EMERGENCY (imminent shutdown) anything pauses.
        if context.thermalStatus >= .critical,
           context.thermalStatus >= .emergency || (request.isPrefilled && isAheadOfReader(request, context)),
           context.forecastHeadroom - environment > configuration.attributionMargin,
           pausedSeconds[request.id, default: 0] < configuration.maximumPauseSeconds {
            pausedSeconds[request.id, default: 0] += configuration.criticalPauseSeconds
            return .idle(until: context.time + configuration.criticalPauseSeconds, reason: .thermalPause)
        }
        let environmentHot = environment >= configuration.hotHeadroom
        if !request.isPrefilled {
            return prefill(request, context, maximum: maximum,
                           speed: environmentHot ? configuration.hotPrefillSpeed : configuration.interactivePrefillSpeed)
        }
        // The app's own heat at the edge of SEVERE: pause while the reader still has text to read
        // (pausing helps only when the environment alone is clearly below the line).
        if context.thermalHeadroom >= configuration.pauseHeadroom,
           environment < configuration.pauseHeadroom - configuration.attributionMargin,
           isAheadOfReader(request, context) {
            return .idle(until: context.time + 0.5, reason: .thermalPause)
        }
        if let threads = calibrationThreads(maximum: maximum) { return .run(id: request.id, threads: threads, hint: .none) }
        // The reader has caught up with the reply (long prompts ran in its gaps, or the throttled
        // phone fell below the pace): the person waits for this token, as for a first one. It runs
        // now, without a pacing gap, until the reply is ahead again — else every later question in
        // the conversation comes later too: at full speed on the default threads when cool, at the
        // least-heat setting when hot.
        let readerWaiting = isReaderWaiting(request, context)
        if !readerWaiting, let next = nextTokenTime[request.id], context.time < next - 1e-9 {
            return .idle(until: next, reason: .pacing)
        }
        let headroom = context.forecastHeadroom
        var rate = configuration.interactiveTokensPerSecond
        var threads = chosenThreads ?? maximum
        var hint = PerformanceHint.none
        // The environment alone just below the SEVERE line: any heat holds the skin above the
        // line for as long as the work runs, whatever its power, so the seconds at SEVERE are set
        // by how long the reply runs, not by its peak. It runs at the paced rate, each token at
        // the clocks of least energy, and ends sooner. (At or above the line, the skin is past it
        // with or without the work: the lowest power.)
        let environmentAtLine = configuration.environmentAtLine.contains(environment)
        let hot = !environmentAtLine && (environmentHot || headroom >= configuration.hotHeadroom)
        if hot {
            // The least heat: one thread at reading pace, each token at the clocks of least energy
            // per token — the skin, with a time constant of minutes, warms by the energy it gets,
            // and the lowest clocks spend more of it per token (the uncore and static power run
            // longer) — or, before a token on the thread count was measured, a target of the
            // token's gap (the lowest clocks that keep the pace).
            rate = configuration.readingTokensPerSecond
            // One thread, unless the throttled phone no longer keeps reading pace on one.
            threads = (latestDecodeSeconds[1] ?? 0) > 0.8 / rate ? threads : 1
            hint = efficientHint(threads: threads, gap: 1 / rate)
            if hint == .none { hint = .target(seconds: 1 / rate) }
        } else if headroom >= configuration.cautionHeadroom {
            rate = (configuration.interactiveTokensPerSecond + configuration.readingTokensPerSecond) / 2
        }
        // Cool or warm, battery saver or not: the paced token runs at the clocks of least energy
        // per token. A slower pace would save nothing more (the clocks set a token's energy, the
        // gap does not) and only finish the reply later: work cut when the person stops is energy
        // spent for nothing.
        // Unless background work is out of slack: then the token runs at full speed and its gap
        // goes to that work.
        // Nor while another person waits for a first token: the reply's time at the efficient
        // clocks is taken from that prompt, which runs only while the reply is ahead of its reader.
        let promptWaiting = context.pending.contains { $0.requestClass == .interactive && $0.id != request.id && !$0.isPrefilled }
        if hint == .none, !overloaded, !readerWaiting, !promptWaiting { hint = efficientHint(threads: threads, gap: 1 / rate) }
        // A person waiting (this reply's reader, or another's first token): when cool, race's
        // threads. The calibrated decode threads are the fewest within `threadTolerance` of the
        // fastest, for energy, and were measured maybe under other conditions: at 5 % battery,
        // under the peak-power limit, one thread decoded 6 tokens/s against 12–13 on the default
        // threads (`ember sim fuzz` seed 643: a question waited 22.7 s for its first token behind a
        // reply its reader had caught up with, race's 15.3 s).
        if !hot, readerWaiting || promptWaiting { threads = maximum }
        nextTokenTime[request.id] = context.time + 1 / rate
        return .run(id: request.id, threads: threads, hint: hint)
    }

    /// The ADPF target of a paced token on `threads`: `efficientTokenSlowdown` × the fastest token
    /// seen there (the clocks of least energy per token), never longer than the pacing gap; no hint
    /// before a token on `threads` was measured.
    private func efficientHint(threads: Int, gap: Double) -> PerformanceHint {
        guard let fastest = fastestDecodeSeconds[threads], fastest > 0 else { return .none }
        return .target(seconds: min(gap, configuration.efficientTokenSlowdown * fastest))
    }

    /// Whether the reply's reader, reading from its first token at `readerTokensPerSecond`, has
    /// not yet reached its last token.
    private func isAheadOfReader(_ request: RequestSnapshot, _ context: SchedulingContext) -> Bool {
        guard let first = firstTokenSeen[request.id] else { return false }
        let read = (context.time - first) * configuration.readerTokensPerSecond
        return Double(request.generatedTokens) > read + 1
    }

    /// Whether the reply's reader, reading from its first token at `readerTokensPerSecond`, has
    /// read every token generated so far (and waits for the next).
    private func isReaderWaiting(_ request: RequestSnapshot, _ context: SchedulingContext) -> Bool {
        guard let first = firstTokenSeen[request.id] else { return false }
        return (context.time - first) * configuration.readerTokensPerSecond >= Double(request.generatedTokens)
    }

    /// A prompt chunk. The first one ever runs on the default threads with a boost and sets the
    /// reference speed (what a racing runtime gets); later ones spread over every core with an
    /// ADPF target of `speed` × that reference, so the OS can lower the clocks — more cores at
    /// lower voltage do the same work for less energy.
    ///
    /// A reference measured while the phone was warmer than now (a higher thermal status: the OS
    /// was capping the clocks) is a throttled phone's speed, and a cooler phone's prompts would
    /// keep running at it — a first token several times later than a racing runtime's. So the
    /// first chunk after the status falls below the reference's is boosted again and measures
    /// the reference anew.
    ///
    /// Background chunks are short while the screen is on, so an interactive request that arrives
    /// waits little; with the screen off they are full size (fewer weight reads).
    private mutating func prefill(_ request: RequestSnapshot, _ context: SchedulingContext, maximum: Int, speed: Double) -> SchedulingDecision {
        guard let reference = referencePrefillRate, referenceStatus.map({ context.thermalStatus >= $0 }) ?? true else {
            measuringReference = true
            referenceStatus = context.thermalStatus
            return .run(id: request.id, threads: maximum, hint: .boost)
        }
        let short = request.requestClass == .background && context.isScreenOn
        let sized = max(configuration.minimumBackgroundStepTokens, Int(configuration.backgroundStepSeconds * reference * speed))
        let limit = short ? min(sized, context.prefillChunkTokens) : context.prefillChunkTokens
        let chunk = min(limit, request.promptTokens - request.prefilledTokens)
        let threads = max(maximum, context.availableCores)
        return .run(id: request.id, threads: threads, hint: .target(seconds: Double(chunk) / (reference * speed)), chunk: chunk)
    }

    /// The next step of background work, `request` the most urgent. `force` (the request waits
    /// no longer: past its latest start or its longest wait) skips the deferrals.
    private mutating func decideBackground(_ request: RequestSnapshot, _ context: SchedulingContext,
                                           maximum: Int, environment: Double, force: Bool) -> SchedulingDecision {
        // Paced background decoding needs little bandwidth: one core is enough and costs least.
        let threads = 1
        let slack = self.slack(request, context)
        let urgent = slack < 0
        if !urgent && !force && !isAged(request, context) {
            let wake = min(latestStart(request, context), request.arrival + configuration.maximumWaitSeconds)
            // Waiting for a cooler phone helps only when the heat is the app's: with the
            // environment alone warm, the phone would not cool, and the work runs paced instead.
            if context.forecastHeadroom >= configuration.cautionHeadroom,
               environment < configuration.cautionHeadroom - configuration.attributionMargin {
                return .idle(until: min(context.time + configuration.deferralSeconds, wake), reason: .thermalDeferral)
            }
        }
        if !request.isPrefilled {
            // Out of slack: a racing runtime's prompt step, whole chunks on the default threads
            // without a hint. Spread over every core with a target, as when there is time, a
            // phone throttled at its clock cap ran every core at the cap: more power than race,
            // heat sooner (`ember sim fuzz` seed 334, a 15-note batch in a 42.5 °C room on the
            // low-end phone: 1.7 s more at SEVERE than race).
            if urgent, referencePrefillRate != nil {
                let chunk = min(context.prefillChunkTokens, request.promptTokens - request.prefilledTokens)
                return .run(id: request.id, threads: maximum, hint: .none, chunk: chunk)
            }
            return prefill(request, context, maximum: maximum, speed: urgent ? 1 : backgroundPace(context).prefill)
        }
        if let calibration = calibrationThreads(maximum: maximum) { return .run(id: request.id, threads: calibration, hint: .none) }
        if urgent {
            // Out of slack: unpaced on the decode threads (the fewest within `threadTolerance` of
            // the fastest: decoding is memory-bound, more threads add power, not speed), with the
            // other prefilled requests out of slack decoded in the same step (a step reads the
            // weights once for all of them).
            let limit = max(1, min(configuration.backgroundBatch, context.maximumDecodeBatch))
            let late = context.pending.filter { $0.requestClass == .background && $0.id != request.id && $0.isPrefilled && self.slack($0, context) < 0 }
            let together = [request] + urgencyOrder(late).prefix(limit - 1)
            let decodeThreads = chosenThreads ?? maximum
            if together.count == 1 { return .run(id: request.id, threads: decodeThreads, hint: .none) }
            return .decodeBatch(ids: together.map(\.id), threads: decodeThreads, hint: .none)
        }
        // The batch: the most urgent background requests, as many as the engine holds. Their
        // prompts are processed first (one after another), then their tokens come together.
        let limit = max(1, min(configuration.backgroundBatch, context.maximumDecodeBatch))
        let batch = urgencyOrder(context.pending.filter { $0.requestClass == .background }).prefix(limit)
        if let waiting = batch.first(where: { !$0.isPrefilled }), self.slack(waiting, context) >= 0 {
            return prefill(waiting, context, maximum: maximum, speed: backgroundPace(context).prefill)
        }
        let ready = batch.filter(\.isPrefilled)
        let due = ready.compactMap { nextTokenTime[$0.id] }.max() ?? -.infinity
        if context.time < due - 1e-9 {
            return .idle(until: due, reason: .pacing)
        }
        for member in ready { nextTokenTime[member.id] = context.time + 1 / backgroundPace(context).decode }
        if ready.count == 1 { return .run(id: request.id, threads: threads, hint: .none) }
        return .decodeBatch(ids: ready.map(\.id), threads: threads, hint: .none)
    }

    /// The pace of background work: prompt speed (fraction of the reference) and decode steps per
    /// second. With the screen on, the phone's fixed power (display and awake board, about 1 W —
    /// ../shared/research/power-thermal.md §5: race-to-idle wins when fixed power dominates) is
    /// spent whether or not the work runs, and work left when the person stops is work not done:
    /// background work runs at the interactive pace. With the screen off the phone sleeps between
    /// steps, and the low pace (lower clocks, E ∝ V²) costs least.
    private func backgroundPace(_ context: SchedulingContext) -> (prefill: Double, decode: Double) {
        if overloaded { return (1, configuration.interactiveTokensPerSecond) }
        return context.isScreenOn
            ? (configuration.screenOnBackgroundPrefillSpeed, configuration.interactiveTokensPerSecond)
            : (configuration.backgroundPrefillSpeed, configuration.backgroundTokensPerSecond)
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
    /// (infinite without a deadline), counting the work queued ahead: see `queueSlacks`. A request
    /// not among `context.pending` counts its own work only.
    func slack(_ request: RequestSnapshot, _ context: SchedulingContext) -> Double {
        if let slack = queueSlack[request.id], queueSlackTime == context.time { return slack }
        guard let deadline = request.deadline else { return .infinity }
        return deadline - context.time - estimatedSeconds(request) * configuration.deadlineSafetyFactor
    }

    /// The latest time the request can start and still meet its deadline (with the safety factor).
    func latestStart(_ request: RequestSnapshot, _ context: SchedulingContext) -> Double {
        let slack = self.slack(request, context)
        return slack.isFinite ? context.time + max(0, slack) : .infinity
    }

    /// Each background request's slack, queue-aware: background work runs most urgent first
    /// (`urgencyOrder`), so a request finishes after the work of every request ahead of it —
    /// their prompts one after another, their tokens decoded together in batches of `batch` — not
    /// after its own work alone. A batch of notes with one deadline used to count each note's own
    /// work: every note had slack until all of them had none, too late for the notes at the back
    /// (`ember sim fuzz` seed 100 on the low-end phone: the 15th of 19 notes due in 108 s missed
    /// its deadline, race met it). And a request runs only after those ahead of it, so the slack
    /// of each is also at most that of every request behind it (the work ahead of a late request
    /// must run now: earliest deadline first's feasibility test). Without deadlines, infinite.
    func queueSlacks(_ background: [RequestSnapshot], time: Double, batch: Int) -> [Int: Double] {
        let ordered = urgencyOrder(background)
        var slacks: [Double] = []
        var promptSeconds = 0.0, tokensAhead = 0.0
        let prefillRate = self.prefillRate ?? 100
        for request in ordered {
            promptSeconds += Double(max(0, request.promptTokens - request.prefilledTokens)) / prefillRate
            let tokensLeft = Double(max(0, request.maxTokens - request.generatedTokens))
            tokensAhead += tokensLeft
            // Its own tokens, or its share of the decode steps of everything ahead, if longer.
            let decodeSeconds = max(tokensLeft, tokensAhead / Double(max(1, batch))) / configuration.backgroundTokensPerSecond
            guard let deadline = request.deadline else {
                slacks.append(.infinity)
                continue
            }
            slacks.append(deadline - time - (promptSeconds + decodeSeconds) * configuration.deadlineSafetyFactor)
        }
        var result: [Int: Double] = [:]
        var behind = Double.infinity
        for index in ordered.indices.reversed() {
            behind = min(behind, slacks[index])
            result[ordered[index].id] = behind
        }
        return result
    }

    /// Seconds the rest of `request` takes at the background pace.
    func estimatedSeconds(_ request: RequestSnapshot) -> Double {
        let promptLeft = Double(max(0, request.promptTokens - request.prefilledTokens))
        let tokensLeft = Double(max(0, request.maxTokens - request.generatedTokens))
        let prefill = promptLeft / (prefillRate ?? 100)
        return prefill + tokensLeft / configuration.backgroundTokensPerSecond
    }
}
