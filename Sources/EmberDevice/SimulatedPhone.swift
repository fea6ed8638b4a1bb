import EmberCore

/// One stretch of simulated time with constant power, reported to observers (the timeline).
public struct PhoneSegment: Sendable, Equatable {
    public var start: Double
    public var end: Double
    /// Everything the phone consumes (SoC, screen, rest of the board, the battery's losses while
    /// it discharges; charging losses are the charger's).
    public var totalWatts: Double
    public var socWatts: Double
    /// The OS's throttle level during the segment (see `SimulatedPhone.throttleLevel`).
    public var level: Int
    public var busy: Bool
    /// State at the end of the segment.
    public var socCelsius: Double
    public var skinCelsius: Double
    public var batteryPercent: Double
    public var batteryVolts: Double
    public var status: ThermalStatus
}

/// A phone on a virtual clock: thermal network, battery, governor and CPU model advanced together
/// by the work the model really does.
public struct SimulatedPhone: ThermalSource, PowerSource {
    public let profile: DeviceProfile
    public let processor: ProcessorModel
    public private(set) var time: Double = 0
    public private(set) var thermal: ThermalNetwork
    /// The same phone without the app's work: the same ambient, screen, board and charger, the
    /// CPU idle. What the environment alone does to the skin; the policy's work adds the rest.
    public private(set) var environmentThermal: ThermalNetwork
    public private(set) var battery: BatteryModel
    public private(set) var governor: ThermalGovernor
    public var ambientCelsius: Double
    public var pluggedIn: Bool
    /// The plugged-in charger's rating, when it differs from the profile's.
    public var chargerWatts: Double?
    public var screenOn: Bool
    /// Low Power Mode / battery saver forced on or off by the user (nil: the OS's automatic rule).
    public var powerSaveOverride: Bool?
    /// Threads the last work used; the governor sizes its level for them.
    public private(set) var threads: Int
    /// The clock level in force (0 = top clocks): the deepest of the OS caps and schedutil's choice.
    public private(set) var level = 0
    /// The level the OS caps the clocks at — thermal governor, battery saver, peak-power
    /// management — whatever the load (0 = not throttled). schedutil's idle choice is not a cap.
    public private(set) var throttleLevel = 0
    /// The scheduler's utilisation average (PELT), 0…1; schedutil sets the clocks from it.
    public private(set) var utilization = 0.0
    private var nextPoll: Double = 0
    private var previousPoll: (time: Double, skin: Double)?
    private var skinSlope = 0.0
    /// The heat inputs of `environmentThermal` in the last segment.
    private var environmentInputs: (soc: Double, skin: Double) = (0, 0)

    /// Receives each segment after it is simulated.
    public var observer: ((PhoneSegment) -> Void)?

    public init(profile: DeviceProfile, ambientCelsius: Double, socCelsius: Double, skinCelsius: Double,
                batteryPercent: Double, pluggedIn: Bool = false, screenOn: Bool = true) {
        self.profile = profile
        processor = ProcessorModel(profile: profile)
        thermal = ThermalNetwork(thermal: profile.thermal, socCelsius: socCelsius, skinCelsius: skinCelsius)
        environmentThermal = thermal
        battery = BatteryModel(profile: profile.battery, stateOfChargePercent: batteryPercent)
        governor = ThermalGovernor(profile: profile)
        self.ambientCelsius = ambientCelsius
        self.pluggedIn = pluggedIn
        self.screenOn = screenOn
        threads = profile.cpu.defaultThreads
    }

    // MARK: What the app sees

    public var thermalStatus: ThermalStatus { ThermalStatus.from(skinCelsius: thermal.skinCelsius, profile: profile) }

    public func thermalHeadroom(forecastSeconds: Double) -> Double {
        let base = profile.thermal.headroomBaseCelsius
        let severe = ThermalStatus.severeThreshold(profile)
        let forecast = thermal.skinCelsius + skinSlope * min(60, max(0, forecastSeconds))
        return max(0, (forecast - base) / (severe - base))
    }

    /// Thermal headroom of the phone without the app's work (`environmentThermal`), now and
    /// `forecastSeconds` ahead on its present trend: what the environment alone causes.
    public func environmentHeadroom(forecastSeconds: Double = 0) -> Double {
        let base = profile.thermal.headroomBaseCelsius
        let severe = ThermalStatus.severeThreshold(profile)
        var future = environmentThermal
        if forecastSeconds > 0 {
            future.advance(seconds: min(60, forecastSeconds), socWatts: environmentInputs.soc, skinWatts: environmentInputs.skin,
                           ambientCelsius: ambientCelsius)
        }
        return max(0, (future.skinCelsius - base) / (severe - base))
    }

    /// The status the environment alone gives (`environmentThermal`).
    public var environmentStatus: ThermalStatus {
        ThermalStatus.from(skinCelsius: environmentThermal.skinCelsius, profile: profile)
    }

    /// The battery's temperature: the cell lies against the case, so the skin node's.
    public var batteryCelsius: Double { thermal.skinCelsius }

    public var batteryPercent: Double { battery.stateOfChargePercent }
    public var isCharging: Bool { pluggedIn && battery.stateOfChargePercent < 100 }
    public var isPowerSaveMode: Bool {
        if let powerSaveOverride { return powerSaveOverride }
        return !pluggedIn && battery.stateOfChargePercent <= profile.battery.powerSavePercent
    }
    public var isShutDown: Bool { battery.brownedOut || thermalStatus == .shutdown }

    /// Charging thermal mitigation: the charger's power is halved from LIGHT and quartered from
    /// MODERATE, as the Android thermal HAL's battery-charging cooling device does.
    var chargeThermalDerating: Double {
        switch thermalStatus {
        case .none: 1
        case .light: 0.5
        default: 0.25
        }
    }

    /// The deepest level battery saver allows, or 0.
    var powerSaveLevel: Int {
        isPowerSaveMode ? processor.level(atMostFraction: profile.battery.powerSaveFrequencyFraction) : 0
    }

    // MARK: Advancing time

    /// Runs `work` on `threads` from now; returns its seconds and the SoC energy it used.
    ///
    /// The clocks follow schedutil: after idle gaps the utilisation average has decayed, so work
    /// starts at a lower frequency and speeds up as utilisation climbs back. `boost` asks for top
    /// clocks at once (Android ADPF, uclamp.min); `targetSeconds` is an ADPF target duration: the
    /// lowest clocks that finish the work in time. Work still running at `until` (a simulated
    /// time) stops there unfinished: `finished` is false and the seconds and energy are those spent.
    @discardableResult
    public mutating func perform(_ work: WorkCost, threads: Int, boost: Bool = false, targetSeconds: Double? = nil,
                                 until stopTime: Double = .infinity) -> (seconds: Double, socJoules: Double, finished: Bool) {
        self.threads = threads
        if boost || targetSeconds != nil { utilization = 1 }
        var seconds = 0.0, joules = 0.0
        var remaining = 1.0  // fraction of the work still to do
        while remaining > 1e-12 {
            guard time < stopTime - 1e-12 else { return (seconds, joules, false) }
            updateLevel()
            if let targetSeconds {
                // The deepest level that still finishes the rest in the time left, never above the caps.
                let timeLeft = max(1e-6, targetSeconds - seconds)
                var hinted = level
                for candidate in level...processor.deepestLevel
                where processor.seconds(for: work, level: candidate, threads: threads) * remaining <= timeLeft {
                    hinted = candidate
                }
                level = hinted
                limitForBattery(work: work)
            }
            let full = processor.seconds(for: work, level: level, threads: threads)
            let watts = processor.busySocWatts(for: work, level: level, threads: threads, socCelsius: thermal.socCelsius)
            let untilPoll = max(1e-9, nextPoll - time)
            // While utilisation is still climbing, re-pick the clocks every few milliseconds.
            let untilRamp = utilization < 0.8 ? 0.004 : .infinity
            let span = min(full * remaining, untilPoll, untilRamp, stopTime - time)
            advance(seconds: span, socWatts: watts, busy: true)
            seconds += span
            joules += watts * span
            remaining -= full > 0 ? span / full : remaining
        }
        return (seconds, joules, true)
    }

    /// Lets `seconds` pass with the CPU idle.
    public mutating func idle(seconds: Double) {
        var remaining = seconds
        while remaining > 1e-12 {
            updateLevel()
            let span = min(remaining, max(1e-9, nextPoll - time), utilization > 0.01 ? 0.02 : 1.0)
            advance(seconds: span, socWatts: processor.idleSocWatts, busy: false)
            remaining -= span
        }
    }

    /// Runs the governor's poll when due and recomputes the throttle level.
    private mutating func updateLevel() {
        if time >= nextPoll - 1e-12 {
            governor.poll(skinCelsius: thermal.skinCelsius, socCelsius: thermal.socCelsius)
            if let previous = previousPoll, time > previous.time {
                skinSlope = (thermal.skinCelsius - previous.skin) / (time - previous.time)
            }
            if previousPoll == nil || time - previousPoll!.time >= 10 {
                previousPoll = (time, thermal.skinCelsius)
            }
            nextPoll = time + profile.thermal.governor.pollSeconds
        }
        let processor = self.processor, threads = self.threads, soc = thermal.socCelsius
        let governed = governor.level(processor: processor) { candidate in
            processor.busyCoreWatts(level: candidate, threads: threads, socCelsius: soc)
                + processor.dramWatts(bytesPerSecond: processor.bandwidth(level: candidate, threads: threads))
        }
        throttleLevel = max(governed, powerSaveLevel)
        level = max(throttleLevel, schedutilLevel)
        limitForBattery(work: nil)
    }

    /// Peak power management (Qualcomm BCL, Apple's performance management): when the cell could
    /// not hold the brown-out voltage at this level's power, the clocks go down until it can.
    private mutating func limitForBattery(work: WorkCost?) {
        let margin = 0.1
        while level < processor.deepestLevel {
            let soc = processor.busyCoreWatts(level: level, threads: threads, socCelsius: thermal.socCelsius)
                + processor.dramWatts(bytesPerSecond: processor.bandwidth(level: level, threads: threads))
            let load = soc + profile.power.awakeWatts + (screenOn ? profile.power.screenWatts : 0)
            if battery.predictedTerminalVolts(loadWatts: load) >= profile.battery.brownoutVolts + margin { return }
            level += 1
            throttleLevel = max(throttleLevel, level)
        }
    }

    /// The level schedutil asks for: the lowest frequency at or above headroom × f_max × utilisation.
    var schedutilLevel: Int {
        let target = min(1, profile.cpu.frequencyHeadroom * utilization)
        let top = processor.leadFrequency(level: 0)
        var chosen = 0
        for candidate in 0...processor.deepestLevel where processor.leadFrequency(level: candidate) >= target * top - 1e-9 {
            chosen = candidate
        }
        return chosen
    }

    /// Integrates heat and charge over `seconds` at constant power.
    private mutating func advance(seconds: Double, socWatts: Double, busy: Bool) {
        guard seconds > 0 else { return }
        let halfLife = profile.cpu.utilizationHalfLifeMilliseconds / 1000
        utilization += ((busy ? 1 : 0) - utilization) * (1 - pow(0.5, seconds / halfLife))
        let power = profile.power
        let board = screenOn || busy ? power.awakeWatts + (screenOn ? power.screenWatts : 0) : power.sleepWatts
        let soc = screenOn || busy ? socWatts : 0
        let load = soc + board
        let rated = pluggedIn ? (chargerWatts ?? profile.battery.chargerWatts) * chargeThermalDerating : 0
        let chargerHeat = battery.advance(seconds: seconds, loadWatts: load, chargerRatedWatts: rated,
                                          batteryCelsius: batteryCelsius)
        let batteryHeat = battery.heatWatts
        thermal.advance(seconds: seconds, socWatts: soc, skinWatts: board + batteryHeat + chargerHeat,
                        ambientCelsius: ambientCelsius)
        // The phone without the app: an idle CPU, the board awake only with the screen on; the
        // battery's and charger's heat as they are (they depend little on the app's share).
        let idleBoard = screenOn ? power.awakeWatts + power.screenWatts : power.sleepWatts
        environmentInputs = (screenOn ? processor.idleSocWatts : 0, idleBoard + batteryHeat + chargerHeat)
        environmentThermal.advance(seconds: seconds, socWatts: environmentInputs.soc, skinWatts: environmentInputs.skin,
                                   ambientCelsius: ambientCelsius)
        // What the phone consumes: its load and the cell's losses while it supplies it. Losses
        // while charging are the charger's (paid from the wall, for energy stored).
        let consumed = load + (battery.currentAmps > 0 ? batteryHeat : 0)
        let segment = PhoneSegment(start: time, end: time + seconds, totalWatts: consumed,
                                   socWatts: soc, level: throttleLevel, busy: busy,
                                   socCelsius: thermal.socCelsius, skinCelsius: thermal.skinCelsius,
                                   batteryPercent: battery.stateOfChargePercent, batteryVolts: battery.terminalVolts,
                                   status: thermalStatus)
        time += seconds
        observer?(segment)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
