import ArgumentParser
import Ember
import EmberCore
import EmberScheduler

/// The phone state summaries run under (`notes summarize`, `eval summarize`): the adaptive
/// policy defers background summaries while the phone is hot, or low on battery and off the
/// charger, until their deadline.
struct SummaryPlatformOptions: ParsableArguments {
    @Option(help: "Thermal status (none, light, moderate, severe, critical, emergency, shutdown).")
    var thermal: ThermalStatusArgument = ThermalStatusArgument(status: .none)

    @Option(help: "Battery level, 0 to 100.")
    var battery: Double = 100

    @Flag(inversion: .prefixedNo, help: "Whether the phone is on the charger.")
    var charging = true

    @Flag(name: .customLong("low-power"), help: "Battery saver / Low Power Mode is on.")
    var lowPower = false

    @Option(help: "Seconds each summary may wait for a cooler or charging phone before it runs anyway.")
    var deadline: Double = 600

    func validate() throws {
        guard battery.isFinite, (0...100).contains(battery) else { throw ValidationError("--battery must be between 0 and 100, not \(battery)") }
        guard deadline.isFinite, deadline > 0, deadline <= 86_400 else {
            throw ValidationError("--deadline must be between 0 and 86400 seconds, not \(deadline)")
        }
    }

    var state: PlatformState {
        PlatformState(thermalStatus: thermal.status, batteryPercent: battery, isCharging: charging, isLowPowerMode: lowPower)
    }

    /// The scheduler that runs summaries for `model` under the adaptive policy in this state.
    func scheduler(model: LanguageModel, threads: Int) -> TokenScheduler {
        let platform = PlatformStateSource(state)
        return TokenScheduler(model: model, policy: AdaptivePolicy(), thermal: platform, power: platform, threadCount: threads)
    }

    /// A line for people when the policy will hold summaries back, or nil. Only heat holds
    /// background work back: the adaptive policy does not wait for a charger (waiting saves no
    /// energy); low battery and battery saver only slow it to its low pace.
    var deferralNote: String? {
        let hot = PlatformState.estimatedHeadroom(thermal.status) >= AdaptivePolicy.Configuration().cautionHeadroom
        guard hot else { return nil }
        return "note: the phone is hot; the adaptive policy holds each summary back and runs it when its deadline of \(Int(deadline)) s (--deadline) draws near"
    }
}

/// A thermal status named as Android names it.
struct ThermalStatusArgument: ExpressibleByArgument {
    var status: ThermalStatus

    init(status: ThermalStatus) { self.status = status }

    init?(argument: String) {
        guard let status = ThermalStatus.allCases.first(where: { $0.name == argument.lowercased() }) else { return nil }
        self.status = status
    }

    var defaultValueDescription: String { status.name }
    static var allValueStrings: [String] { ThermalStatus.allCases.map(\.name) }
}
