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
                                  "back_to_back", "think_s", "charger_w"]
}

extension Scenario {
    /// Reads and validates the scenario at `path`.
    public static func load(path: String) throws(DeviceError) -> Scenario {
        let scenario: Scenario = try JSONFile.decode(path: path)
        try scenario.validate(file: path)
        return scenario
    }

    /// Checks ranges and that each event has the fields its type needs.
    public func validate(file: String) throws(DeviceError) {
        func fail(_ field: String, _ reason: String) -> DeviceError {
            DeviceError(.invalidValue, file: file, field: field, reason: reason)
        }
        guard !name.isEmpty else { throw fail("name", "must not be empty") }
        guard durationSeconds.isFinite, durationSeconds > 0, durationSeconds <= 7 * 86_400 else {
            throw fail("duration_s", "must be seconds in 0…604800 (a week), got \(durationSeconds)")
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
        for (index, event) in events.enumerated() {
            let prefix = "events[\(index)]"
            guard event.atSeconds >= 0, event.atSeconds <= durationSeconds else {
                throw fail(prefix + ".at_s", "must be within the scenario (0…\(durationSeconds) s), got \(event.atSeconds)")
            }
            if event.isRequest {
                if event.type == .summarize {
                    guard let notes = event.notes, notes > 0, notes <= 100_000 else {
                        throw fail(prefix + ".notes", "a summarize event needs the number of notes (1…100000)")
                    }
                } else if event.prompt == nil && event.promptTokens == nil {
                    throw fail(prefix, "a \(event.type.rawValue) event needs 'prompt' or 'prompt_tokens'")
                }
                if let tokens = event.promptTokens, !(1...131_072).contains(tokens) {
                    throw fail(prefix + ".prompt_tokens", "must be 1…131072, got \(tokens)")
                }
                for (field, value) in [("response_tokens", event.responseTokens), ("max_tokens", event.maxTokens)] {
                    if let value, !(1...32_768).contains(value) { throw fail(prefix + "." + field, "must be 1…32768, got \(value)") }
                }
                if let deadline = event.deadlineSeconds, !(deadline > 0) {
                    throw fail(prefix + ".deadline_s", "must be positive seconds after arrival, got \(deadline)")
                }
                if let every = event.repeatEverySeconds, !(every > 0) {
                    throw fail(prefix + ".repeat_every_s", "must be positive, got \(every)")
                }
                if let count = event.count, count < 1 { throw fail(prefix + ".count", "must be at least 1, got \(count)") }
                if let think = event.thinkSeconds, think < 0 { throw fail(prefix + ".think_s", "must not be negative") }
                if event.backToBack == true, event.untilSeconds == nil, event.count == nil {
                    throw fail(prefix + ".until_s", "a back_to_back event needs until_s or count")
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
