import EmberLM

/// Draws scenarios from the space the schema allows, for property checks (`ember sim fuzz`):
/// ambient −10…45 °C, start temperatures, battery 5–100 %, charging on or off and its changes,
/// screen on or off, chat bursts and back-to-back chats, long prompts, summarize batches with tight
/// and loose deadlines, background jobs, memory warnings, low-power mode.
///
/// A scenario is a function of its seed alone (SplitMix64, `SeededRandomSource`), so a failing
/// seed names its scenario; scenarios last 5–40 minutes and make at most a few hundred requests,
/// so a thousand of them on four phones simulate in minutes.
public struct ScenarioGenerator: Sendable {
    public init() {}

    public func scenario(seed: UInt64) -> Scenario {
        var random = Draw(seed: seed)
        let duration = (random.uniform(300, 2400) / 10).rounded() * 10
        let ambient = random.uniform(-10, 45).rounded(to: 0.5)
        // In hand (30 °C), or as warm as where the phone lay (a car, a pocket, a cold street).
        let skin = random.chance(0.5) ? 30 : min(60, max(-10, ambient + random.uniform(-2, 10))).rounded(to: 0.5)
        let start = Scenario.Start(batteryPercent: random.uniform(5, 100).rounded(to: 1), ambientCelsius: ambient,
                                   socCelsius: (skin + random.uniform(0, 5)).rounded(to: 0.5), skinCelsius: skin,
                                   pluggedIn: random.chance(0.3), screenOn: random.chance(0.85))
        var events: [Scenario.Event] = []
        for _ in 0..<random.whole(1, 4) { events.append(request(&random, duration: duration)) }
        for _ in 0..<random.whole(0, 4) { events.append(environment(&random, duration: duration)) }
        events.sort { $0.atSeconds < $1.atSeconds }
        return Scenario(name: "fuzz-\(seed)", description: "Drawn by `ember sim fuzz` from seed \(seed).",
                        durationSeconds: duration, start: start, events: events)
    }

    private func request(_ random: inout Draw, duration: Double) -> Scenario.Event {
        let at = random.uniform(0, duration * 0.8).rounded(to: 1)
        var event: Scenario.Event
        switch random.whole(0, 5) {
        case 0:  // a burst of chat turns at a fixed interval
            event = Scenario.Event(atSeconds: at, type: .chat)
            event.promptTokens = random.whole(20, 300)
            event.responseTokens = random.whole(20, 400)
            event.repeatEverySeconds = random.uniform(20, 120).rounded(to: 1)
            event.count = random.whole(2, 8)
        case 1:  // a conversation: each question after the previous answer was read
            event = Scenario.Event(atSeconds: at, type: .chat)
            event.promptTokens = random.whole(20, 200)
            event.responseTokens = random.whole(50, 400)
            event.backToBack = true
            event.thinkSeconds = random.uniform(2, 30).rounded(to: 1)
            event.untilSeconds = min(duration, at + random.uniform(60, duration / 2)).rounded(to: 1)
        case 2:  // a long prompt (a pasted document)
            event = Scenario.Event(atSeconds: at, type: .chat)
            event.promptTokens = random.whole(1000, 4000)
            event.responseTokens = random.whole(50, 200)
            if random.chance(0.4) {
                event.repeatEverySeconds = random.uniform(60, 180).rounded(to: 1)
                event.count = random.whole(2, 3)
            }
        case 3:  // notes summarized in the background, with a tight, loose or no deadline
            event = Scenario.Event(atSeconds: at, type: .summarize)
            event.notes = random.whole(1, 20)
            event.promptTokens = random.whole(300, 900)
            event.responseTokens = random.whole(40, 120)
            switch random.whole(0, 2) {
            case 0: event.deadlineSeconds = random.uniform(60, 600).rounded(to: 1)
            case 1: event.deadlineSeconds = random.uniform(1800, 7200).rounded(to: 1)
            default: break
            }
        default:  // other background work
            event = Scenario.Event(atSeconds: at, type: .background)
            event.promptTokens = random.whole(100, 1500)
            event.responseTokens = random.whole(50, 400)
            if random.chance(0.6) { event.deadlineSeconds = random.uniform(120, 3600).rounded(to: 1) }
        }
        event.maxTokens = max(event.responseTokens ?? 1, 512)
        return event
    }

    private func environment(_ random: inout Draw, duration: Double) -> Scenario.Event {
        let at = random.uniform(0, duration).rounded(to: 1)
        var event: Scenario.Event
        switch random.whole(0, 5) {
        case 0:
            event = Scenario.Event(atSeconds: at, type: .plug)
            if random.chance(0.5) { event.chargerWatts = random.uniform(5, 45).rounded(to: 1) }
        case 1: event = Scenario.Event(atSeconds: at, type: .unplug)
        case 2:
            event = Scenario.Event(atSeconds: at, type: .ambient)
            event.celsius = random.uniform(-10, 45).rounded(to: 0.5)
        case 3:
            event = Scenario.Event(atSeconds: at, type: .screen)
            event.on = random.chance(0.5)
        case 4:
            event = Scenario.Event(atSeconds: at, type: .lowPowerMode)
            event.on = random.chance(0.5)
        default:
            event = Scenario.Event(atSeconds: at, type: .memoryPressure)
            event.level = MemoryPressureLevel.allCases[random.whole(0, MemoryPressureLevel.allCases.count - 1)].rawValue
        }
        return event
    }
}

/// Uniform draws from one seeded SplitMix64 stream.
private struct Draw {
    var source: SeededRandomSource
    init(seed: UInt64) { source = SeededRandomSource(seed: seed) }

    mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * source.nextUnitValue() }
    mutating func whole(_ low: Int, _ high: Int) -> Int { low + Int(source.nextUnitValue() * Double(high - low + 1)) }
    mutating func chance(_ probability: Double) -> Bool { source.nextUnitValue() < probability }
}

private extension Double {
    func rounded(to step: Double) -> Double { (self / step).rounded() * step }
}
