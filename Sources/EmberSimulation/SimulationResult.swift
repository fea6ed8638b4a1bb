import EmberCore
import EmberDevice
import EmberScheduler

/// Everything a run produced: requests with their text and timings, the timeline, the totals.
public struct SimulationResult {
    public let profile: String
    public let scenario: String
    public let policy: String
    public let workload: ModelWorkload
    public let simulatedSeconds: Double
    public let requests: [SimulatedRequest]
    public let recorder: TimelineRecorder
    /// SoC energy spent on model work (prompt processing and decoding).
    public let inferenceJoules: Double
    public let batteryStartPercent: Double
    public let batteryEndPercent: Double
    public let memoryPressureEvents: Int
    public let shutdownReason: String?
    /// Seconds the policy left the CPU idle, by reason.
    public let idleSeconds: [IdleReason: Double]
    /// The part of `inferenceJoules` spent on prompts.
    public let prefillJoules: Double
    /// Bytes memory warnings released (real-token mode).
    public let memoryReleasedBytes: Int
    /// The memory plan's total and the app's limit on the profile (nil for named model shapes).
    public var memoryPlanBytes: Int?
    public var memoryLimitBytes: Int?
    public var streamWeights = false
    /// Filled in by the caller: "cost-model" or "real-tokens".
    public var mode = "cost-model"
    /// Host seconds the run took.
    public var wallSeconds = 0.0
    /// Seconds at or above SEVERE of the same scenario without requests (nil: not simulated).
    public var idleSevereSeconds: Double?
    /// The run continued past the scenario's end until the work that arrived was done and read
    /// (`SimulationRunner.drainSeconds`; nil: it ended at the scenario's end).
    public var drained: DrainedRun?

    /// Seconds at or above SEVERE beyond those the phone spends there without the app's work.
    public var severeSecondsAboveIdle: Double {
        max(0, recorder.secondsAtOrAboveSevere - (idleSevereSeconds ?? 0))
    }

    /// Whole-phone energy (SoC, screen, board, battery losses) per completed request; 0 when none completed.
    public var joulesPerCompletedRequest: Double {
        let done = completed.count
        return done > 0 ? recorder.energyJoules / Double(done) : 0
    }

    /// Percent of the battery's capacity the cell delivered over the run (discharge only: what a
    /// charger put back does not subtract). Set by the runner.
    public var batteryDrawnPercent = 0.0

    /// The net change of the battery's charge per completed request: start minus end percent, so
    /// negative when a charger added more than the phone drew (`battery_pct_per_request`). Not
    /// what the requests cost: see `batteryDrawnPercentPerCompletedRequest`. 0 when none completed.
    public var batteryPercentPerCompletedRequest: Double {
        let done = completed.count
        return done > 0 ? (batteryStartPercent - batteryEndPercent) / Double(done) : 0
    }

    /// Battery percent the cell delivered per completed request (`battery_drawn_pct_per_request`):
    /// never negative; with a charger covering the whole load, 0. 0 when none completed.
    public var batteryDrawnPercentPerCompletedRequest: Double {
        let done = completed.count
        return done > 0 ? batteryDrawnPercent / Double(done) : 0
    }

    public var tokensGenerated: Int { requests.reduce(0) { $0 + $1.generatedTokens } }
    public var completed: [SimulatedRequest] { requests.filter(\.isFinished) }

    /// The summary as ordered (key, value) pairs; the first fifteen keys are the `--json` contract.
    /// A drained run (`drained`) adds `drained_end_s`, `drained_energy_j` and
    /// `drained_energy_j_per_request` at the end.
    public var summary: [(String, SummaryValue)] {
        let interactive = requests.filter { $0.requestClass == .interactive }
        let firstTokenTimes = interactive.compactMap(\.timeToFirstToken).sorted()
        // Each reply's decode speed after its first token, as its reader sees it (pacing included).
        let decodeRates = requests.compactMap(\.decodeTokensPerSecond).sorted()
        let tokens = tokensGenerated
        let missed = requests.filter { $0.deadline != nil && $0.missedDeadline && ($0.isFinished || $0.deadline! <= simulatedSeconds) }
        let fields: [(String, SummaryValue)] = [
            ("simulated_s", .number(simulatedSeconds, 1)),
            ("tokens_generated", .integer(tokens)),
            ("energy_j", .number(recorder.energyJoules, 1)),
            ("joules_per_token", .number(tokens > 0 ? inferenceJoules / Double(tokens) : 0, 4)),
            ("battery_start_pct", .number(batteryStartPercent, 2)),
            ("battery_end_pct", .number(batteryEndPercent, 2)),
            ("peak_skin_c", .number(recorder.peakSkinCelsius, 2)),
            ("peak_soc_c", .number(recorder.peakSocCelsius, 2)),
            ("seconds_at_or_above_severe", .number(recorder.secondsAtOrAboveSevere, 1)),
            ("throttled_s", .number(recorder.throttledSeconds, 1)),
            ("ttft_p50_s", .number(percentile(firstTokenTimes, 0.5), 3)),
            ("ttft_p95_s", .number(percentile(firstTokenTimes, 0.95), 3)),
            ("decode_tok_s_p50", .number(percentile(decodeRates, 0.5), 2)),
            ("requests_completed", .integer(completed.count)),
            ("requests_missed_deadline", .integer(missed.count)),
            ("profile", .string(profile)),
            ("scenario", .string(scenario)),
            ("policy", .string(policy)),
            ("mode", .string(mode)),
            ("model", .string(workload.name)),
            ("requests_total", .integer(requests.count)),
            ("prompt_tokens_processed", .integer(requests.reduce(0) { $0 + $1.prefilledTokens })),
            ("inference_energy_j", .number(inferenceJoules, 1)),
            ("prefill_energy_j", .number(prefillJoules, 1)),
            ("device_joules_per_token", .number(tokens > 0 ? recorder.energyJoules / Double(tokens) : 0, 4)),
            ("memory_pressure_events", .integer(memoryPressureEvents)),
            ("memory_released_bytes", .integer(memoryReleasedBytes)),
            ("memory_plan_bytes", .integer(memoryPlanBytes ?? 0)),
            ("memory_limit_bytes", .integer(memoryLimitBytes ?? 0)),
            ("stream_weights", .string(streamWeights ? "yes" : "no")),
            ("pacing_s", .number(idleSeconds[.pacing] ?? 0, 1)),
            ("deferred_s", .number((idleSeconds[.thermalDeferral] ?? 0) + (idleSeconds[.batteryDeferral] ?? 0), 1)),
            ("thermal_pause_s", .number(idleSeconds[.thermalPause] ?? 0, 1)),
            ("shutdown", .string(shutdownReason ?? "none")),
            ("idle_severe_s", .number(idleSevereSeconds ?? 0, 1)),
            ("severe_s_above_idle", .number(severeSecondsAboveIdle, 1)),
            ("energy_j_per_request", .number(joulesPerCompletedRequest, 2)),
            ("battery_pct_per_request", .number(batteryPercentPerCompletedRequest, 4)),
            ("wall_s", .number(wallSeconds, 2)),
            ("battery_drawn_pct", .number(batteryDrawnPercent, 3)),
            ("battery_drawn_pct_per_request", .number(batteryDrawnPercentPerCompletedRequest, 4)),
        ]
        guard let drained else { return fields }
        let drainedFields: [(String, SummaryValue)] = [
            ("drained_end_s", .number(drained.endSeconds, 1)),
            ("drained_energy_j", .number(drained.energyJoules, 1)),
            ("drained_energy_j_per_request", .number(drained.joulesPerCompletedRequest(through: drained.endSeconds), 2)),
        ]
        return fields + drainedFields
    }

    /// The summary as one line of JSON.
    public var summaryJSON: String {
        "{" + summary.map { "\"\($0.0)\":\($0.1.json)" }.joined(separator: ",") + "}"
    }

    /// The summary for people, one field a line.
    public var summaryText: String {
        summary.map { key, value in "\(key.padding(toLength: max(28, key.count + 1), withPad: " ", startingAt: 0)) \(value.text)" }.joined(separator: "\n")
    }
}

/// A value in the summary.
public enum SummaryValue: Equatable, Sendable {
    case number(Double, Int)
    case integer(Int)
    case string(String)

    public var json: String {
        switch self {
        case .number(let value, let digits): format(value, digits)
        case .integer(let value): String(value)
        case .string(let value): jsonString(value)
        }
    }

    public var text: String {
        switch self {
        case .number(let value, let digits): format(value, digits)
        case .integer(let value): String(value)
        case .string(let value): value
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .number(let value, _): value
        case .integer(let value): Double(value)
        case .string: nil
        }
    }
}

/// The `p` quantile of sorted `values` (nearest rank), 0 when empty.
func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let rank = Int((p * Double(values.count)).rounded(.up)) - 1
    return values[min(values.count - 1, max(0, rank))]
}

/// A JSON string literal.
func jsonString(_ value: String) -> String { JSONString.quote(value) }

/// A run continued past the scenario's end, with no new arrivals and the environment as it was
/// then, until every request that arrived had finished and every chat reply had been read
/// (`Reader.finishedReading`). A request the scenario's end cuts off costs energy without counting
/// as completed, and which requests the end cuts off depends on the policy's pace, not on what the
/// work costs. Drained, every policy completes the same work, so whole-phone energy per completed
/// request compares the cost of the work; `energyJoules(through:)` measures two runs over the
/// same window (the one done first idles to the other's end).
public struct DrainedRun {
    /// When the last request that arrived had finished and been read (or the drain's limit, or a
    /// shutdown).
    public let endSeconds: Double
    /// Whole-phone energy from the start to `endSeconds`.
    public let energyJoules: Double
    /// Requests finished by `endSeconds`.
    public let completedRequests: Int
    /// The phone at `endSeconds`, idled on to extend the window.
    let phone: SimulatedPhone

    init(endSeconds: Double, energyJoules: Double, completedRequests: Int, phone: SimulatedPhone) {
        self.endSeconds = endSeconds
        self.energyJoules = energyJoules
        self.completedRequests = completedRequests
        var phone = phone
        phone.observer = nil
        self.phone = phone
    }

    /// Whole-phone energy from the start to `end`: the run's, then the idle phone's until `end`
    /// (no later than `endSeconds` changes nothing).
    public func energyJoules(through end: Double) -> Double {
        guard end > endSeconds, !phone.isShutDown else { return energyJoules }
        let meter = EnergyMeter()
        var phone = self.phone
        phone.observer = { meter.add($0) }
        phone.idle(seconds: end - endSeconds)
        return energyJoules + meter.joules
    }

    /// Whole-phone energy to `end` per completed request; 0 when none completed.
    public func joulesPerCompletedRequest(through end: Double) -> Double {
        completedRequests > 0 ? energyJoules(through: end) / Double(completedRequests) : 0
    }
}

/// Sums the energy of the phone's segments.
final class EnergyMeter {
    private(set) var joules = 0.0
    func add(_ segment: PhoneSegment) { joules += segment.totalWatts * max(0, segment.end - segment.start) }
}
