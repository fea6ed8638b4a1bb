import EmberCore
import EmberDevice

/// What adaptive must hold against race on any scenario (`ember sim fuzz`, issue 20).
public enum PolicyProperty: String, CaseIterable, Sendable {
    /// Every interactive request's first token within 2 s of arrival plus its prompt's processing
    /// time at the lowest clocks — or, when race is late too (more work than the phone can do),
    /// no later than 1.1 × race's time to first token — unless the phone was at CRITICAL.
    case firstToken = "first_token"
    /// No deadline missed that race meets.
    case deadlines
    /// `severe_s_above_idle` at most race's (so 0 wherever race's is 0), to one thermal poll
    /// (`severeToleranceSeconds`).
    case severe
    /// Whole-phone energy per completed request at most race's: on drained runs
    /// (`SimulationResult.drained`) over the same window when both have one, so a request the
    /// scenario's end cuts off counts the same for both policies; when a phone shut down, over
    /// the time both ran (requests finished by then).
    case energyPerRequest = "energy_per_request"
    /// No shutdown or brown-out that race avoids.
    case shutdown

    /// Adaptive's failures of each property against race on one run pair, with a reason each
    /// (an empty dictionary: every property holds).
    public static func failures(race: SimulationResult, adaptive: SimulationResult, profile: DeviceProfile,
                                prefillChunkTokens: Int) -> [PolicyProperty: String] {
        var failures: [PolicyProperty: String] = [:]
        if let late = lateFirstToken(race: race, adaptive: adaptive, profile: profile, prefillChunkTokens: prefillChunkTokens) {
            failures[.firstToken] = late
        }
        let raceMet = Set(race.requests.filter { $0.deadline != nil && !$0.missedDeadline }.map(\.label))
        let end = adaptive.simulatedSeconds
        if let missed = adaptive.requests.first(where: {
            $0.deadline != nil && $0.missedDeadline && ($0.isFinished || $0.deadline! <= end) && raceMet.contains($0.label)
        }) {
            failures[.deadlines] = "\(missed.label) missed its deadline at \(format(missed.deadline!, 1)) s; race met it"
        }
        let severeRace = race.severeSecondsAboveIdle, severeAdaptive = adaptive.severeSecondsAboveIdle
        if severeAdaptive > severeRace + severeToleranceSeconds(profile) + 1e-6 {
            failures[.severe] = "\(format(severeAdaptive, 1)) s at or above SEVERE beyond idle, race \(format(severeRace, 1)) s "
                + "(more than one \(format(severeToleranceSeconds(profile), 1)) s thermal poll apart)"
        }
        // Drained runs (both finished what arrived) over the same window; else the scenario's window.
        var joulesRace = race.joulesPerCompletedRequest, joulesAdaptive = adaptive.joulesPerCompletedRequest
        var doneRace = race.completed.count, doneAdaptive = adaptive.completed.count
        var window = ""
        if race.shutdownReason != nil || adaptive.shutdownReason != nil {
            // A phone shut down: both over the window where both phones ran.
            let end = min(race.simulatedSeconds, adaptive.simulatedSeconds)
            func perRequest(_ result: SimulationResult) -> (joules: Double, done: Int) {
                let done = result.requests.filter { ($0.finishedTime ?? .infinity) <= end }.count
                return (done > 0 ? result.recorder.energyJoules(through: end) / Double(done) : 0, done)
            }
            (joulesRace, doneRace) = perRequest(race)
            (joulesAdaptive, doneAdaptive) = perRequest(adaptive)
            window = " to \(format(end, 1)) s, when a phone shut down"
        } else if let drainedRace = race.drained, let drainedAdaptive = adaptive.drained {
            let end = max(drainedRace.endSeconds, drainedAdaptive.endSeconds)
            joulesRace = drainedRace.joulesPerCompletedRequest(through: end)
            joulesAdaptive = drainedAdaptive.joulesPerCompletedRequest(through: end)
            doneRace = drainedRace.completedRequests
            doneAdaptive = drainedAdaptive.completedRequests
            window = " to \(format(end, 1)) s, drained"
        }
        if doneAdaptive == 0 ? doneRace > 0 : (doneRace > 0 && joulesAdaptive > joulesRace * (1 + 1e-9)) {
            failures[.energyPerRequest] = "\(format(joulesAdaptive, 1)) J per completed request (\(doneAdaptive) completed), "
                + "race \(format(joulesRace, 1)) J (\(doneRace))\(window)"
        }
        if let reason = adaptive.shutdownReason, race.shutdownReason == nil {
            failures[.shutdown] = "\(reason) at \(format(adaptive.simulatedSeconds, 1)) s; race ran to the end"
        }
        return failures
    }

    /// How far apart two runs' seconds at or above SEVERE may be and still count as equal: one
    /// thermal poll (`thermal.governor.poll_s`, 1 s on every shipped profile). A phone reports its
    /// thermal status once a poll (Android's thermal HAL at its polling delay; the simulated
    /// governor polls the same way), so a SEVERE episode's start and end are known to a poll,
    /// and runs whose episodes differ by less cannot be told apart on the phone. The simulator
    /// integrates the skin continuously and shows sub-poll differences: a reply moved by a few
    /// seconds shifts when a cooling skin crosses the line by 0.1–0.6 s (`ember sim fuzz`: 8 of
    /// the 21 `severe` failures before this tolerance, e.g. 0.2 s against race's 0 s on the iPhone
    /// in a car that cools from 42.5 to 18 °C).
    public static func severeToleranceSeconds(_ profile: DeviceProfile) -> Double {
        profile.thermal.governor.pollSeconds
    }

    /// The first interactive request adaptive answered late, described; nil when none was.
    static func lateFirstToken(race: SimulationResult, adaptive: SimulationResult, profile: DeviceProfile,
                               prefillChunkTokens: Int) -> String? {
        let processor = ProcessorModel(profile: profile)
        let threads = profile.cpu.defaultThreads
        let raceByLabel = Dictionary(race.requests.map { ($0.label, $0) }, uniquingKeysWith: { first, _ in first })
        let end = adaptive.simulatedSeconds
        let critical = adaptive.recorder.criticalSpans
        for request in adaptive.requests where request.requestClass == .interactive {
            // The prompt at the deepest clock level on the default threads, chunk by chunk.
            let tokens = request.promptTokenCount ?? request.promptTokens
            var promptSeconds = 0.0
            var position = 0
            while position < tokens {
                let chunk = min(prefillChunkTokens, tokens - position)
                promptSeconds += processor.seconds(for: adaptive.workload.prefillCost(tokens: chunk, position: position),
                                                   level: processor.deepestLevel, threads: threads)
                position += chunk
            }
            let bound = 2 + promptSeconds
            let answered = request.firstTokenTime ?? .infinity
            let waited = min(answered, end) - request.arrival
            if waited <= bound { continue }
            // Unanswered by the end, with the bound past the end: nothing to judge.
            if request.firstTokenTime == nil, request.arrival + bound > end { continue }
            // At CRITICAL between arrival and the first token, interactive work may pause.
            if critical.contains(where: { $0.upperBound >= request.arrival && $0.lowerBound <= min(answered, end) }) { continue }
            if let raced = raceByLabel[request.label] {
                let raceWaited = (raced.firstTokenTime ?? race.simulatedSeconds) - raced.arrival
                if raceWaited > bound, waited <= 1.1 * raceWaited { continue }
                if raced.firstTokenTime == nil, request.firstTokenTime == nil { continue }
            }
            let race = raceByLabel[request.label].flatMap { $0.timeToFirstToken }.map { format($0, 2) + " s" } ?? "none"
            return "\(request.label) (arrived \(format(request.arrival, 1)) s) waited "
                + (request.firstTokenTime == nil ? "past the end" : "\(format(waited, 2)) s")
                + " for its first token; bound \(format(bound, 2)) s, race \(race)"
        }
        return nil
    }
}
