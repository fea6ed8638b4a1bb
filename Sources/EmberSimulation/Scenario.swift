import EmberDevice

/// A timed script of what the user and the world do: chat turns, summarization and background
/// jobs, charger, ambient temperature, screen, memory pressure. JSON schema in
/// Simulator/Scenarios/README.md.
public struct Scenario: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    /// Simulated length; the run stops here (or earlier if the phone shuts down).
    public var durationSeconds: Double
    public var start: Start
    public var events: [Event]

    enum CodingKeys: String, CodingKey {
        case name, description, start, events
        case durationSeconds = "duration_s"
    }

    /// The phone's state when the scenario begins.
    public struct Start: Codable, Sendable, Equatable {
        public var batteryPercent: Double
        public var ambientCelsius: Double
        /// Defaults to 30 °C (in hand) for both nodes when absent.
        public var socCelsius: Double?
        public var skinCelsius: Double?
        public var pluggedIn: Bool?
        public var screenOn: Bool?

        enum CodingKeys: String, CodingKey {
            case batteryPercent = "battery_pct"
            case ambientCelsius = "ambient_c"
            case socCelsius = "soc_c"
            case skinCelsius = "skin_c"
            case pluggedIn = "plugged_in"
            case screenOn = "screen_on"
        }
    }

    /// One timed event. `type` selects which other fields apply.
    public struct Event: Codable, Sendable, Equatable {
        public var atSeconds: Double
        public var type: Kind
        /// A label shown in the report (defaults to the type and a number).
        public var label: String?
        // Requests (chat, summarize, background).
        public var prompt: String?
        public var promptTokens: Int?
        /// Tokens the reply has in cost-model mode (real tokens stop at end-of-generation or max_tokens).
        public var responseTokens: Int?
        public var maxTokens: Int?
        /// Seconds after arrival by which the work must be done.
        public var deadlineSeconds: Double?
        public var priority: Int?
        /// Repeat every this many seconds…
        public var repeatEverySeconds: Double?
        /// …this many times in all…
        public var count: Int?
        /// …or until this time; with `back_to_back`, each repeat arrives when the previous one
        /// finishes, plus `think_s`.
        public var untilSeconds: Double?
        public var backToBack: Bool?
        public var thinkSeconds: Double?
        /// Whether a person reads each back-to-back chat reply before thinking of the next
        /// question (default true); false for a client that asks at once (a benchmark).
        public var reads: Bool?
        // summarize
        public var notes: Int?
        // plug
        public var chargerWatts: Double?
        // ambient
        public var celsius: Double?
        // screen, low_power_mode
        public var on: Bool?
        // memory_pressure
        public var level: String?

        public enum Kind: String, Codable, Sendable, CaseIterable {
            case chat, summarize, background, plug, unplug, ambient, screen
            case lowPowerMode = "low_power_mode"
            case memoryPressure = "memory_pressure"
        }

        enum CodingKeys: String, CodingKey {
            case type, label, prompt, count, notes, celsius, on, level, priority
            case atSeconds = "at_s"
            case promptTokens = "prompt_tokens"
            case responseTokens = "response_tokens"
            case maxTokens = "max_tokens"
            case deadlineSeconds = "deadline_s"
            case repeatEverySeconds = "repeat_every_s"
            case untilSeconds = "until_s"
            case backToBack = "back_to_back"
            case thinkSeconds = "think_s"
            case reads
            case chargerWatts = "charger_w"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            atSeconds = try container.decode(Double.self, forKey: .atSeconds)
            let typeName = try container.decode(String.self, forKey: .type)
            guard let kind = Kind(rawValue: typeName) else {
                throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription:
                    "unknown event type '\(typeName)'; expected one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            type = kind
            label = try container.decodeIfPresent(String.self, forKey: .label)
            prompt = try container.decodeIfPresent(String.self, forKey: .prompt)
            promptTokens = try container.decodeIfPresent(Int.self, forKey: .promptTokens)
            responseTokens = try container.decodeIfPresent(Int.self, forKey: .responseTokens)
            maxTokens = try container.decodeIfPresent(Int.self, forKey: .maxTokens)
            deadlineSeconds = try container.decodeIfPresent(Double.self, forKey: .deadlineSeconds)
            priority = try container.decodeIfPresent(Int.self, forKey: .priority)
            repeatEverySeconds = try container.decodeIfPresent(Double.self, forKey: .repeatEverySeconds)
            count = try container.decodeIfPresent(Int.self, forKey: .count)
            untilSeconds = try container.decodeIfPresent(Double.self, forKey: .untilSeconds)
            backToBack = try container.decodeIfPresent(Bool.self, forKey: .backToBack)
            thinkSeconds = try container.decodeIfPresent(Double.self, forKey: .thinkSeconds)
            reads = try container.decodeIfPresent(Bool.self, forKey: .reads)
            notes = try container.decodeIfPresent(Int.self, forKey: .notes)
            chargerWatts = try container.decodeIfPresent(Double.self, forKey: .chargerWatts)
            celsius = try container.decodeIfPresent(Double.self, forKey: .celsius)
            on = try container.decodeIfPresent(Bool.self, forKey: .on)
            level = try container.decodeIfPresent(String.self, forKey: .level)
            let known = Set(CodingKeys.allStringValues)
            let all = try decoder.container(keyedBy: AnyKey.self)
            for key in all.allKeys where !known.contains(key.stringValue) {
                throw DecodingError.dataCorruptedError(forKey: AnyKey(key.stringValue), in: all, debugDescription:
                    "unknown field '\(key.stringValue)' for a \(typeName) event")
            }
        }

        public init(atSeconds: Double, type: Kind) {
            self.atSeconds = atSeconds
            self.type = type
        }

        /// Whether the event submits model work.
        public var isRequest: Bool { [.chat, .summarize, .background].contains(type) }
    }
}

/// Memory-pressure levels as the platforms name them.
public enum MemoryPressureLevel: String, Sendable, CaseIterable {
    /// Android `TRIM_MEMORY_UI_HIDDEN` (20): the UI went to the background.
    case uiHidden = "ui_hidden"
    /// Android `TRIM_MEMORY_BACKGROUND` (40): the app is on the LRU list.
    case background
    /// Android `TRIM_MEMORY_RUNNING_MODERATE` / iOS memory warning.
    case moderate
    /// Android `TRIM_MEMORY_RUNNING_CRITICAL` / iOS repeated warnings before jetsam.
    case critical
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Scenario.Event.CodingKeys {
    static let allStringValues = ["type", "label", "prompt", "count", "notes", "celsius", "on", "level", "priority", "at_s",
                                  "prompt_tokens", "response_tokens", "max_tokens", "deadline_s", "repeat_every_s", "until_s",
                                  "back_to_back", "think_s", "charger_w", "reads"]
}

extension Scenario {
    /// The longest scenario: a week of simulated time.
    public static let maximumDurationSeconds = 7.0 * 86_400
    /// The shortest repeat interval: the simulator's time resolution (a timeline sample, a
    /// governor poll are no finer).
    public static let minimumRepeatSeconds = 0.01
    /// The most requests one run makes, repeats and notes included. Every pending request is
    /// shown to the policy at every step, so the host's work grows with the square of the
    /// requests in flight: 1,000 notes summarized at once take about 40 s to simulate, 10,000
    /// over five minutes.
    public static let maximumRequests = 1_000
    /// The longest prompt: 131,072 tokens (a 128k context), given as `prompt_tokens` or as text of
    /// about four bytes a token (`prompt` at most 512 KiB).
    public static let maximumPromptTokens = 131_072
    public static let maximumPromptBytes = maximumPromptTokens * 4
    /// The longest reply, `response_tokens` and `max_tokens`.
    public static let maximumResponseTokens = 32_768
    /// Labels are copied into every request an event makes.
    public static let maximumLabelCharacters = 200
    /// Events in one scenario (repeats are one event).
    public static let maximumEvents = 10_000

    /// Reads and validates the scenario at `path`.
    public static func load(path: String) throws(DeviceError) -> Scenario {
        let scenario: Scenario = try JSONFile.decode(path: path)
        try scenario.validate(file: path)
        return scenario
    }

    /// Requests the event makes: exact for timed repeats and notes, at most `maximumRequests`
    /// for back-to-back repeats bounded only by time (the run counts those as they come).
    func requestCount(_ event: Event) -> Double {
        guard event.isRequest else { return 0 }
        let notes = event.type == .summarize ? Double(event.notes ?? 1) : 1
        if event.backToBack == true {
            return Double(event.count ?? 1) * notes
        }
        if let every = event.repeatEverySeconds {
            let until = min(event.untilSeconds ?? durationSeconds, durationSeconds)
            let byTime = until >= event.atSeconds ? ((until - event.atSeconds) / every + 1e-9).rounded(.down) + 1 : 1
            return min(Double(event.count ?? Int.max), byTime)
        }
        return notes
    }

    /// Checks ranges and that each event has the fields its type needs, then that the whole
    /// scenario stays within `maximumRequests`; every number must be finite.
    public func validate(file: String) throws(DeviceError) {
        func fail(_ field: String, _ reason: String) -> DeviceError {
            DeviceError(.invalidValue, file: file, field: field, reason: reason)
        }
        func number(_ value: Double) -> String { format(value, 3) }
        func seconds(_ value: Double?, _ field: String, _ range: ClosedRange<Double>, _ meaning: String) throws(DeviceError) {
            guard let value else { return }
            guard value.isFinite, range.contains(value) else {
                throw fail(field, "must be \(meaning) in \(number(range.lowerBound))…\(number(range.upperBound)) s, got \(value)")
            }
        }
        func whole(_ value: Int?, _ field: String, _ range: ClosedRange<Int>) throws(DeviceError) {
            guard let value else { return }
            guard range.contains(value) else { throw fail(field, "must be \(range.lowerBound)…\(range.upperBound), got \(value)") }
        }
        guard !name.isEmpty else { throw fail("name", "must not be empty") }
        guard name.count <= Self.maximumLabelCharacters else { throw fail("name", "is longer than \(Self.maximumLabelCharacters) characters") }
        guard durationSeconds.isFinite, durationSeconds > 0, durationSeconds <= Self.maximumDurationSeconds else {
            throw fail("duration_s", "must be seconds in 0…\(Int(Self.maximumDurationSeconds)) (a week), got \(durationSeconds)")
        }
        guard (0...100).contains(start.batteryPercent) else {
            throw fail("start.battery_pct", "must be a percentage 0…100, got \(start.batteryPercent)")
        }
        guard (-30...60).contains(start.ambientCelsius) else {
            throw fail("start.ambient_c", "must be °C in -30…60, got \(start.ambientCelsius) (Kelvin or Fahrenheit?)")
        }
        for (field, value) in [("start.soc_c", start.socCelsius), ("start.skin_c", start.skinCelsius)] {
            if let value, !(-30...120).contains(value) { throw fail(field, "must be °C in -30…120, got \(value)") }
        }
        guard events.count <= Self.maximumEvents else {
            throw fail("events", "has \(events.count) events; at most \(Self.maximumEvents) (use repeat_every_s or count for repeats)")
        }
        var totalRequests = 0.0
        for (index, event) in events.enumerated() {
            let prefix = "events[\(index)]"
            guard event.atSeconds >= 0, event.atSeconds <= durationSeconds else {
                throw fail(prefix + ".at_s", "must be within the scenario (0…\(durationSeconds) s), got \(event.atSeconds)")
            }
            if let label = event.label, label.count > Self.maximumLabelCharacters {
                throw fail(prefix + ".label", "is longer than \(Self.maximumLabelCharacters) characters")
            }
            if event.isRequest {
                if event.type == .summarize {
                    guard let notes = event.notes, notes > 0, notes <= Self.maximumRequests else {
                        throw fail(prefix + ".notes", "a summarize event needs the number of notes (1…\(Self.maximumRequests))")
                    }
                } else if event.prompt == nil && event.promptTokens == nil {
                    throw fail(prefix, "a \(event.type.rawValue) event needs 'prompt' or 'prompt_tokens'")
                }
                if let prompt = event.prompt, prompt.utf8.count > Self.maximumPromptBytes {
                    throw fail(prefix + ".prompt", "has \(prompt.utf8.count) bytes, about \(prompt.utf8.count / 4) tokens; at most "
                               + "\(Self.maximumPromptBytes) bytes (\(Self.maximumPromptTokens) tokens, a 128k context)")
                }
                try whole(event.promptTokens, prefix + ".prompt_tokens", 1...Self.maximumPromptTokens)
                try whole(event.responseTokens, prefix + ".response_tokens", 1...Self.maximumResponseTokens)
                try whole(event.maxTokens, prefix + ".max_tokens", 1...Self.maximumResponseTokens)
                try whole(event.priority, prefix + ".priority", -1000...1000)
                try seconds(event.deadlineSeconds, prefix + ".deadline_s", Self.minimumRepeatSeconds...Self.maximumDurationSeconds,
                            "seconds after arrival")
                try seconds(event.repeatEverySeconds, prefix + ".repeat_every_s", Self.minimumRepeatSeconds...Self.maximumDurationSeconds,
                            "an interval")
                try whole(event.count, prefix + ".count", 1...Self.maximumRequests)
                try seconds(event.untilSeconds, prefix + ".until_s", event.atSeconds...durationSeconds, "a time from at_s to the scenario's end")
                try seconds(event.thinkSeconds, prefix + ".think_s", 0...durationSeconds, "a pause within the scenario")
                if event.backToBack == true, event.untilSeconds == nil, event.count == nil {
                    throw fail(prefix + ".until_s", "a back_to_back event needs until_s or count")
                }
                let requests = requestCount(event)
                totalRequests += requests
                guard totalRequests <= Double(Self.maximumRequests) else {
                    throw fail(prefix, "brings the scenario to \(number(totalRequests)) requests (this event \(number(requests))); "
                               + "at most \(Self.maximumRequests) in one run (raise repeat_every_s, lower count or notes)")
                }
            }
            switch event.type {
            case .ambient:
                guard let celsius = event.celsius, (-30...60).contains(celsius) else {
                    throw fail(prefix + ".celsius", "an ambient event needs °C in -30…60")
                }
            case .screen, .lowPowerMode:
                guard event.on != nil else { throw fail(prefix + ".on", "a \(event.type.rawValue) event needs on: true or false") }
            case .memoryPressure:
                guard let level = event.level, MemoryPressureLevel(rawValue: level) != nil else {
                    throw fail(prefix + ".level", "must be one of \(MemoryPressureLevel.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            case .plug:
                if let watts = event.chargerWatts, !(watts > 0 && watts <= 200) {
                    throw fail(prefix + ".charger_w", "must be watts in 0…200, got \(watts)")
                }
            default:
                break
            }
        }
    }
}
