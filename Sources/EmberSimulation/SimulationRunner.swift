import EmberCore
import EmberDevice
import EmberScheduler

/// Runs a scenario on a simulated phone on a virtual clock: the policy picks each step, the token
/// engine produces the tokens, the device model charges their time, heat and charge.
public struct SimulationRunner {
    public let profile: DeviceProfile
    public let scenario: Scenario
    public let workload: ModelWorkload
    /// Seconds between timeline samples, `minimumSampleInterval`…`maximumSampleInterval`, and at
    /// most `maximumSamples` of them over the scenario.
    public var sampleInterval = 1.0
    /// Most requests the engine decodes in one step (the KV caches it may hold at once), 1…64.
    public var maximumDecodeBatch = 4
    /// Prompt tokens one prefill step processes at most: the model's batch size, at most 128.
    public var prefillChunkTokens: Int { max(1, min(workload.batchSize, 128)) }
    /// Whether `run` also simulates the scenario without requests, for `severe_s_above_idle`.
    public var idleBaseline = true
    /// Seconds past the scenario's end the run may go on to finish the requests that arrived and
    /// let their readers read them (`SimulationResult.drained`); 0: the run ends at the scenario's
    /// end. The result's other figures stay the scenario's window; a step running at the end
    /// finishes (its energy after the end counts to the drain only).
    public var drainSeconds = 0.0

    /// The finest timeline: the simulator's time resolution.
    public static let minimumSampleInterval = 0.01
    public static let maximumSampleInterval = 3600.0
    /// The most timeline samples one run keeps (about 100 bytes each, and a CSV row each): a
    /// week at 1 s, or two hours at 0.01 s, fit.
    public static let maximumSamples = 1_000_000
    /// The most thermal-governor polls one run simulates (the phone advances at least once a
    /// poll): a week at the shipped profiles' 1 s polls fits ten times over.
    public static let maximumPolls = 10_000_000

    public init(profile: DeviceProfile, scenario: Scenario, workload: ModelWorkload) {
        self.profile = profile
        self.scenario = scenario
        self.workload = workload
    }

    /// Checks the settings against the scenario and the profile before anything is allocated:
    /// the sample interval and the samples it makes, the governor polls, the decode batch.
    public func validate() throws(SimulationError) {
        let interval = sampleInterval, duration = scenario.durationSeconds
        guard interval.isFinite, interval >= Self.minimumSampleInterval, interval <= Self.maximumSampleInterval else {
            throw SimulationError(field: "sample_interval_s", reason: "must be \(format(Self.minimumSampleInterval, 2))…"
                                  + "\(format(Self.maximumSampleInterval, 0)) seconds (the simulator's resolution is 0.01 s), got \(interval)")
        }
        guard duration.isFinite, duration > 0, duration <= Scenario.maximumDurationSeconds else {
            throw SimulationError(field: "duration_s", reason: "must be seconds in 0…\(Int(Scenario.maximumDurationSeconds)), got \(duration)")
        }
        let samples = (duration / interval).rounded(.up)
        guard samples <= Double(Self.maximumSamples) else {
            throw SimulationError(field: "sample_interval_s", reason: "\(format(interval, 3)) s over the scenario's \(format(duration, 1)) s "
                                  + "makes \(format(samples, 0)) timeline samples; at most \(Self.maximumSamples) "
                                  + "(use an interval of at least \(format(duration / Double(Self.maximumSamples), 3)) s)")
        }
        let poll = profile.thermal.governor.pollSeconds
        guard poll.isFinite, poll > 0, (duration / poll).rounded(.up) <= Double(Self.maximumPolls) else {
            throw SimulationError(field: "thermal.governor.poll_s", reason: "\(poll) s over the scenario's \(format(duration, 1)) s makes "
                                  + "more than \(Self.maximumPolls) governor polls; use a longer poll or a shorter scenario")
        }
        guard drainSeconds.isFinite, drainSeconds >= 0, drainSeconds <= Scenario.maximumDurationSeconds else {
            throw SimulationError(field: "drain_s", reason: "must be seconds in 0…\(Int(Scenario.maximumDurationSeconds)), got \(drainSeconds)")
        }
        guard (1...64).contains(maximumDecodeBatch) else {
            throw SimulationError(field: "maximum_decode_batch", reason: "must be 1…64, got \(maximumDecodeBatch)")
        }
        do {
            try scenario.validate(file: "scenario '\(scenario.name)'")
        } catch {
            throw SimulationError(field: error.field.isEmpty ? "scenario" : error.field, reason: error.reason)
        }
    }

    /// Simulates the whole scenario: the same `RequestExecutor` as the app's `TokenScheduler`, on
    /// the simulated phone's virtual clock, with the scenario's requests as its arrivals. Refuses
    /// settings `validate()` refuses, and stops with an error when back-to-back repeats would make
    /// more than `Scenario.maximumRequests` requests, or with the engine's error when a step fails.
    ///
    /// The run ends at the scenario's duration: a step still running then is cut there (its
    /// energy counted, its tokens not), or earlier when the phone shuts down.
    public func run(policy: inout some SchedulingPolicy, engine: inout some TokenEngine,
                    onToken: (SimulatedRequest, String) -> Void = { _, _ in }) throws -> SimulationResult {
        var result = try simulate(scenario, policy: &policy, engine: &engine, drain: drainSeconds, onToken: onToken)
        if idleBaseline {
            result.idleSevereSeconds = try idleSevereSeconds()
        }
        return result
    }

    /// Seconds at or above SEVERE of the same scenario with no requests: the phone in the same
    /// ambient, screen, charger and battery story, the app doing nothing (`severe_s_above_idle`
    /// counts the seconds beyond these).
    public func idleSevereSeconds() throws -> Double {
        var idle = scenario
        idle.events = scenario.events.filter { !$0.isRequest }
        var policy = RacePolicy()
        var engine = CostModelEngine()
        return try simulate(idle, policy: &policy, engine: &engine, drain: 0, onToken: { _, _ in }).recorder.secondsAtOrAboveSevere
    }

    private func simulate(_ scenario: Scenario, policy: inout some SchedulingPolicy, engine: inout some TokenEngine,
                          drain: Double, onToken: (SimulatedRequest, String) -> Void) throws -> SimulationResult {
        try validate()
        let start = scenario.start
        var phone = SimulatedPhone(profile: profile, ambientCelsius: start.ambientCelsius,
                                   socCelsius: start.socCelsius ?? 30, skinCelsius: start.skinCelsius ?? 30,
                                   batteryPercent: start.batteryPercent, pluggedIn: start.pluggedIn ?? false,
                                   screenOn: start.screenOn ?? true)
        let recorder = TimelineRecorder(interval: sampleInterval)
        let duration = scenario.durationSeconds
        // The timeline is the scenario's window; energy after its end goes to the drain.
        let drainMeter = EnergyMeter()
        phone.observer = { segment in
            if segment.end <= duration {
                recorder.record(segment)
                return
            }
            var tail = segment
            if segment.start < duration {
                var head = segment
                head.end = duration
                recorder.record(head)
                tail.start = duration
            }
            drainMeter.add(tail)
        }
        var platform = SimulatedPlatform(phone: phone, workload: workload, maximumThreads: profile.cpu.defaultThreads,
                                         availableCores: profile.cpu.clusters.reduce(0) { $0 + $1.cores }, duration: duration + drain)
        platform.idleLimit = duration
        var executor = RequestExecutor(engine: engine, platform: platform, prefillChunkTokens: prefillChunkTokens,
                                       maximumDecodeBatch: maximumDecodeBatch)
        defer { engine = executor.engine }
        var schedule = EventSchedule(scenario: scenario)
        var requests: [SimulatedRequest] = []
        var memoryPressureEvents = 0
        var memoryReleasedBytes = 0
        var shutdownReason: String?

        /// Mirrors what the executor did into the requests and the timeline.
        func record(_ event: ExecutionEvent) {
            switch event {
            case .began(let id, let promptTokens, let time):
                requests[id].started = time
                requests[id].promptTokenCount = promptTokens
            case .prefilled(let id, let tokens, _):
                requests[id].prefilledTokens += tokens
            case .promptProcessed, .paced:
                break
            case .token(let id, let token, let time):
                requests[id].generatedTokens += 1
                requests[id].text += token.text
                requests[id].lastTokenTime = time
                if requests[id].firstTokenTime == nil {
                    requests[id].firstTokenTime = time
                    if time <= duration { recorder.mark(time, .firstToken, requests[id].label) }
                }
                if time <= duration { recorder.addToken() }
                onToken(requests[id], token.text)
            case .finished(let id, _, _, let tail, let time):
                requests[id].finishedTime = time
                requests[id].text += tail
                if time <= duration { recorder.mark(time, requests[id].missedDeadline ? .missedDeadline : .finished, requests[id].label) }
                schedule.finished(requests[id], at: time)
            }
        }

        while executor.platform.phone.time < duration - 1e-9 {
            // Events due now.
            while let event = schedule.next(before: executor.platform.phone.time + 1e-9) {
                switch event {
                case .request(let request):
                    guard requests.count < Scenario.maximumRequests else {
                        throw SimulationError(field: "events[\(request.eventIndex)]", reason: "the scenario has made \(requests.count) requests, "
                                              + "the most one run simulates; bound its back_to_back repeats with count or an earlier until_s")
                    }
                    requests.append(request)
                    executor.add(request.snapshot, request: request)
                    recorder.mark(request.arrival, .arrival, request.label)
                case .environment(let change):
                    recorder.mark(executor.platform.phone.time, .event, change.label)
                    switch change.event.type {
                    case .plug:
                        executor.platform.phone.pluggedIn = true
                        executor.platform.phone.chargerWatts = change.event.chargerWatts
                    case .unplug: executor.platform.phone.pluggedIn = false
                    case .ambient: executor.platform.phone.ambientCelsius = change.event.celsius ?? executor.platform.phone.ambientCelsius
                    case .screen: executor.platform.phone.screenOn = change.event.on ?? executor.platform.phone.screenOn
                    case .lowPowerMode: executor.platform.phone.powerSaveOverride = change.event.on
                    case .memoryPressure:
                        memoryPressureEvents += 1
                        memoryReleasedBytes += executor.relieveMemoryPressure(.moderate, events: record)
                    default: break
                    }
                }
            }
            let phone = executor.platform.phone
            if phone.isShutDown {
                shutdownReason = phone.battery.brownedOut ? "battery brown-out" : "thermal shutdown"
                break
            }
            recorder.context = { (phone.thermalHeadroom(forecastSeconds: 0), phone.pluggedIn, phone.screenOn) }
            executor.platform.nextEvent = schedule.nextTime
            do {
                try executor.step(policy: &policy, events: record)
            } catch {
                throw error.underlying
            }
        }
        // Close the last sample.
        if executor.platform.phone.time < duration, shutdownReason == nil {
            executor.platform.phone.idle(seconds: duration - executor.platform.phone.time)
        }
        let platformState = executor.platform
        // The scenario's window: what a step running at its end finished afterwards is the drain's.
        var windowRequests = requests
        for index in windowRequests.indices {
            if let finished = windowRequests[index].finishedTime, finished > duration { windowRequests[index].finishedTime = nil }
            if let first = windowRequests[index].firstTokenTime, first > duration { windowRequests[index].firstTokenTime = nil }
        }
        var drained: DrainedRun?
        if drain > 0, shutdownReason == nil {
            // No new arrivals; the work that arrived runs on until done, then the phone idles
            // until the last reply has been read.
            let end = duration + drain
            executor.platform.nextEvent = .infinity
            executor.platform.idleLimit = end
            while executor.platform.phone.time < end - 1e-9, !executor.isEmpty, !executor.platform.phone.isShutDown {
                do {
                    try executor.step(policy: &policy, events: record)
                } catch {
                    throw error.underlying
                }
            }
            let read = requests.compactMap { request -> Double? in
                guard request.kind == .chat, scenario.events[request.eventIndex].reads != false,
                      let first = request.firstTokenTime, let last = request.finishedTime else { return nil }
                return Reader.finishedReading(firstToken: first, lastToken: last, tokens: request.generatedTokens)
            }.max() ?? 0
            let phone = executor.platform.phone
            if !phone.isShutDown, phone.time < min(read, end) {
                executor.platform.phone.idle(seconds: min(read, end) - phone.time)
            }
            drained = DrainedRun(endSeconds: max(duration, executor.platform.phone.time),
                                 energyJoules: recorder.energyJoules + drainMeter.joules,
                                 completedRequests: requests.filter(\.isFinished).count, phone: executor.platform.phone)
        }
        var result = SimulationResult(
            profile: profile.name, scenario: scenario.name, policy: policy.name, workload: workload,
            simulatedSeconds: min(platformState.phone.time, duration), requests: windowRequests, recorder: recorder,
            inferenceJoules: platformState.inferenceJoules, batteryStartPercent: start.batteryPercent,
            batteryEndPercent: platformState.phone.batteryPercent, memoryPressureEvents: memoryPressureEvents,
            shutdownReason: shutdownReason, idleSeconds: platformState.idleSeconds, prefillJoules: platformState.prefillJoules,
            memoryReleasedBytes: memoryReleasedBytes)
        result.batteryDrawnPercent = platformState.phone.battery.dischargedPercent
        result.drained = drained
        return result
    }
}

/// The simulated phone as an `ExecutionPlatform`: each step's work is charged to the device model
/// (time, heat, charge) and counted as inference energy; idle time advances the virtual clock to
/// the policy's wake time or the next scenario event, whichever comes first.
struct SimulatedPlatform: ExecutionPlatform {
    var phone: SimulatedPhone
    let workload: ModelWorkload
    let maximumThreads: Int
    let availableCores: Int
    /// When the run ends: the scenario's end, or later when it drains. A step running then is cut.
    let duration: Double
    /// The latest time an idle stretch reaches: the scenario's end, then, draining, `duration`.
    var idleLimit: Double
    /// When the next scenario event is due.
    var nextEvent = Double.infinity
    /// Energy of the SoC in inference steps, and the part of it in prompt processing.
    private(set) var inferenceJoules = 0.0
    private(set) var prefillJoules = 0.0
    private(set) var idleSeconds: [IdleReason: Double] = [:]

    init(phone: SimulatedPhone, workload: ModelWorkload, maximumThreads: Int, availableCores: Int, duration: Double) {
        self.phone = phone
        self.workload = workload
        self.maximumThreads = maximumThreads
        self.availableCores = availableCores
        self.duration = duration
        self.idleLimit = duration
    }

    var now: Double { phone.time }
    var isScreenOn: Bool { phone.screenOn }
    var thermalStatus: ThermalStatus { phone.thermalStatus }
    func thermalHeadroom(forecastSeconds: Double) -> Double { phone.thermalHeadroom(forecastSeconds: forecastSeconds) }
    var batteryPercent: Double { phone.batteryPercent }
    var isCharging: Bool { phone.isCharging }
    var isPowerSaveMode: Bool { phone.isPowerSaveMode }
    var environmentHeadroom: Double? { phone.environmentHeadroom(forecastSeconds: 30) }

    /// Charges the step to the phone, up to the scenario's end: a step still running then is cut
    /// (nil; its energy counted).
    mutating func charge(_ work: StepWork, threads: Int, hint: PerformanceHint, startedAt: Double) -> Double? {
        let step: (seconds: Double, socJoules: Double, finished: Bool)
        switch work {
        case .prefill(let tokens, let position):
            step = phone.perform(workload.prefillCost(tokens: tokens, position: position), threads: threads,
                                 boost: hint.isBoost, targetSeconds: hint.targetSeconds, until: duration)
            inferenceJoules += step.socJoules
            prefillJoules += step.socJoules
        case .decode(let positions):
            step = phone.perform(workload.decodeCost(positions: positions), threads: threads,
                                 boost: hint.isBoost, targetSeconds: hint.targetSeconds, until: duration)
            inferenceJoules += step.socJoules
        }
        return step.finished ? step.seconds : nil
    }

    func idleSeconds(until: Double) -> Double {
        min(max(min(until, nextEvent, idleLimit) - phone.time, 1e-3), max(idleLimit - phone.time, 1e-3), duration - phone.time)
    }

    mutating func idle(seconds: Double, reason: IdleReason) {
        phone.idle(seconds: seconds)
        idleSeconds[reason, default: 0] += seconds
    }
}

/// Scenario events in time order, with repeats expanded as they come due.
struct EventSchedule {
    struct EnvironmentChange {
        var event: Scenario.Event
        var label: String
    }

    enum Due {
        case request(SimulatedRequest)
        case environment(EnvironmentChange)
    }

    private struct Pending {
        var time: Double
        var eventIndex: Int
        var occurrence: Int
    }

    let scenario: Scenario
    private var queue: [Pending] = []
    private var nextID = 0

    init(scenario: Scenario) {
        self.scenario = scenario
        queue = scenario.events.indices.map { Pending(time: scenario.events[$0].atSeconds, eventIndex: $0, occurrence: 0) }
        sort()
    }

    private mutating func sort() { queue.sort { ($0.time, $0.eventIndex) < ($1.time, $1.eventIndex) } }

    var nextTime: Double { queue.first?.time ?? .infinity }

    /// The next event due before `time`, removing it (and scheduling its next repeat).
    mutating func next(before time: Double) -> Due? {
        guard let first = queue.first, first.time < time else { return nil }
        queue.removeFirst()
        let event = scenario.events[first.eventIndex]
        let occurrence = first.occurrence
        let label = event.label ?? "\(event.type.rawValue) \(first.eventIndex + 1)"
        guard event.isRequest else {
            return .environment(EnvironmentChange(event: event, label: label))
        }
        // Timed repeats (not back-to-back ones, which follow completions).
        if event.backToBack != true, let every = event.repeatEverySeconds {
            let nextTime = first.time + every
            let withinCount = event.count.map { occurrence + 1 < $0 } ?? true
            let withinTime = nextTime <= (event.untilSeconds ?? scenario.durationSeconds)
            if withinCount && withinTime {
                queue.append(Pending(time: nextTime, eventIndex: first.eventIndex, occurrence: occurrence + 1))
                sort()
            }
        }
        // A summarize event brings all its notes at once; they are returned one per call.
        let notes = event.type == .summarize ? (event.notes ?? 1) : 1
        let requestLabel = notes > 1 || event.repeatEverySeconds != nil || event.backToBack == true
            ? "\(label) #\(occurrence + 1)" : label
        let request = makeRequest(event, index: first.eventIndex, occurrence: occurrence, arrival: first.time, label: requestLabel)
        if event.type == .summarize, notes > 1, occurrence + 1 < notes, event.repeatEverySeconds == nil {
            queue.insert(Pending(time: first.time, eventIndex: first.eventIndex, occurrence: occurrence + 1), at: 0)
        }
        return .request(request)
    }

    /// Schedules the next back-to-back repeat of the finished request's event: `think_s` after the
    /// person has read a chat reply (`Reader.finishedReading`: the later of its last token and its
    /// first token plus its length at reading speed), or after other work finished (or a chat
    /// whose event has `reads: false`).
    mutating func finished(_ request: SimulatedRequest, at time: Double) {
        let event = scenario.events[request.eventIndex]
        guard event.backToBack == true else { return }
        let done = request.occurrence + 1
        var read = time
        if request.kind == .chat, event.reads != false, let first = request.firstTokenTime {
            read = Reader.finishedReading(firstToken: first, lastToken: time, tokens: request.generatedTokens)
        }
        let nextTime = read + (event.thinkSeconds ?? 0)
        if let count = event.count, done >= count { return }
        if nextTime > (event.untilSeconds ?? scenario.durationSeconds) { return }
        queue.append(Pending(time: nextTime, eventIndex: request.eventIndex, occurrence: done))
        sort()
    }

    private mutating func makeRequest(_ event: Scenario.Event, index: Int, occurrence: Int, arrival: Double,
                                      label: String) -> SimulatedRequest {
        defer { nextID += 1 }
        let kind: SimulatedRequest.Kind = event.type == .chat ? .chat : (event.type == .summarize ? .summarize : .background)
        let maxTokens = event.maxTokens ?? (kind == .summarize ? 128 : 256)
        let promptTokens = event.promptTokens ?? event.prompt.map { max(1, $0.utf8.count / 4) } ?? (kind == .summarize ? 600 : 64)
        return SimulatedRequest(
            id: nextID, label: label, kind: kind, requestClass: kind == .chat ? .interactive : .background,
            priority: event.priority ?? (kind == .chat ? 10 : 0), arrival: arrival,
            deadline: event.deadlineSeconds.map { arrival + $0 }, prompt: event.prompt, promptTokens: promptTokens,
            responseTokens: event.responseTokens ?? min(maxTokens, kind == .summarize ? 80 : 160),
            maxTokens: maxTokens, eventIndex: index, occurrence: occurrence)
    }
}
