/// The OS's thermal governor, which the app cannot control: it only sees its effect.
///
/// Two mechanisms, as in Linux: `power_allocator` (IPA) runs a PI loop on the skin temperature
/// and grants the SoC a power budget, from 3 × sustainable power at the switch-on temperature down
/// to the sustainable power at the control temperature (kernel defaults k_pu = 2·SP/ΔT,
/// k_po = SP/ΔT); the CPU then runs at the fastest level whose power fits. `step_wise` guards the
/// junction: above its limit and rising, one more level is removed per poll; below and falling,
/// one is given back.
public struct ThermalGovernor: Sendable, Equatable {
    public let settings: DeviceProfile.Governor
    public let socLimitCelsius: Double
    /// Accumulated control error (K·polls), clamped against wind-up.
    public private(set) var integral: Double = 0
    /// Extra levels removed by the junction guard.
    public private(set) var junctionCap = 0
    /// The SoC power budget of the last poll; infinite below the switch-on temperature.
    public private(set) var budgetWatts = Double.infinity
    private var lastSocCelsius: Double?

    public init(profile: DeviceProfile) {
        settings = profile.thermal.governor
        socLimitCelsius = profile.thermal.socLimitCelsius
    }

    /// One poll: updates the budget from the skin temperature and the junction cap from the SoC's.
    public mutating func poll(skinCelsius: Double, socCelsius: Double) {
        let span = settings.controlCelsius - settings.switchOnCelsius
        let sustainable = settings.sustainablePowerWatts
        if skinCelsius < settings.switchOnCelsius {
            integral = 0
            budgetWatts = .infinity
        } else {
            let error = settings.controlCelsius - skinCelsius
            let proportional = error > 0 ? 2 * sustainable / span : sustainable / span
            var budget = sustainable + proportional * error + settings.integralGain * integral
            // Integrate only while the output is inside its range (anti-wind-up).
            if budget > 0 && budget < 3 * sustainable {
                integral += error
                let limit = sustainable / max(settings.integralGain, 1e-9)
                integral = min(limit, max(-limit, integral))
                budget = sustainable + proportional * error + settings.integralGain * integral
            }
            budgetWatts = max(0, budget)
        }
        let rising = socCelsius > (lastSocCelsius ?? socCelsius) - 1e-9
        if socCelsius > socLimitCelsius, rising {
            junctionCap += 1
        } else if socCelsius < socLimitCelsius - 2, !rising, junctionCap > 0 {
            junctionCap -= 1
        }
        lastSocCelsius = socCelsius
    }

    /// The throttle level for the present budget: the shallowest level whose SoC power fits.
    public func level(processor: ProcessorModel, socWatts: (Int) -> Double) -> Int {
        var level = 0
        if budgetWatts.isFinite {
            level = processor.deepestLevel
            for candidate in 0...processor.deepestLevel where socWatts(candidate) <= budgetWatts {
                level = candidate
                break
            }
        }
        return min(processor.deepestLevel, max(level, junctionCap))
    }
}
