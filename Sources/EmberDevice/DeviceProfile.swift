import EmberCore
/// A phone or tablet described by numbers: memory, CPU clusters and their operating points,
/// power, a two-node thermal network, thermal thresholds and the battery.
///
/// Profiles are JSON files (Profiles/*.json, schema in Profiles/README.md) whose keys are the
/// snake_case names below. Every number in a shipped profile names its source in `sources`.
public struct DeviceProfile: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    /// Which platform's thermal states and memory rules apply.
    public var platform: Platform
    public var memory: Memory
    public var cpu: CPU
    public var power: Power
    public var thermal: Thermal
    public var battery: Battery
    /// Citation for each number, keyed by its dotted path (`battery.capacity_mah`); a key that
    /// names a section (`thermal`) covers every number inside it.
    public var sources: [String: String]

    public enum Platform: String, Codable, Sendable, CaseIterable {
        case android
        case ios
    }

    /// RAM and the memory the OS lets one app keep before it kills it.
    public struct Memory: Codable, Sendable, Equatable {
        public var ramGibibytes: Double
        public var appLimitMebibytes: Double
        /// Peak DRAM bandwidth (LPDDR channel width × data rate).
        public var bandwidthGigabytesPerSecond: Double
        /// The fraction of peak bandwidth CPU inference reaches at top frequency.
        public var achievableFraction: Double
        /// DRAM and interconnect energy per byte moved.
        public var energyPicojoulesPerByte: Double
        /// Bandwidth scales as (CPU frequency / maximum)^coupling: memory and bus clocks are
        /// voted down with the CPU's when it throttles.
        public var frequencyCoupling: Double

        enum CodingKeys: String, CodingKey {
            case ramGibibytes = "ram_gib"
            case appLimitMebibytes = "app_limit_mib"
            case bandwidthGigabytesPerSecond = "bandwidth_gb_s"
            case achievableFraction = "achievable_fraction"
            case energyPicojoulesPerByte = "energy_pj_per_byte"
            case frequencyCoupling = "frequency_coupling"
        }
    }

    /// CPU clusters, fastest first; inference threads fill them in this order.
    public struct CPU: Codable, Sendable, Equatable {
        public var clusters: [Cluster]
        /// Threads an inference engine uses by default (llama.cpp's usual choice: the big cores).
        public var defaultThreads: Int
        /// SoC power outside the cores while awake: interconnect, caches, memory controller.
        public var uncorePowerWatts: Double
        /// Half-life of the scheduler's utilisation average (Linux PELT): after an idle gap the
        /// clocks have dropped and climb back at this pace.
        public var utilizationHalfLifeMilliseconds: Double
        /// schedutil's margin: it asks for `headroom × maximum frequency × utilisation`.
        public var frequencyHeadroom: Double

        enum CodingKeys: String, CodingKey {
            case clusters
            case defaultThreads = "default_threads"
            case uncorePowerWatts = "uncore_power_w"
            case utilizationHalfLifeMilliseconds = "utilization_half_life_ms"
            case frequencyHeadroom = "frequency_headroom"
        }
    }

    /// A group of identical cores sharing one clock.
    public struct Cluster: Codable, Sendable, Equatable {
        public var name: String
        public var cores: Int
        /// Operating points, ascending.
        public var frequenciesMegahertz: [Double]
        /// Voltage at each operating point.
        public var voltages: [Double]
        /// Dynamic power per core in µW/MHz/V², the Linux energy model's `dynamic-power-coefficient`.
        public var dynamicPowerCoefficient: Double
        /// Leakage per powered core at 25 °C.
        public var staticWattsPerCore: Double
        /// FLOPs per cycle per core that quantized matrix kernels reach (prompt processing).
        public var flopsPerCycle: Double
        /// Bandwidth one core can pull from DRAM at its top frequency.
        public var bandwidthPerCoreGigabytesPerSecond: Double

        enum CodingKeys: String, CodingKey {
            case name, cores, voltages
            case frequenciesMegahertz = "frequencies_mhz"
            case dynamicPowerCoefficient = "dynamic_power_coefficient"
            case staticWattsPerCore = "static_w_per_core"
            case flopsPerCycle = "flops_per_cycle"
            case bandwidthPerCoreGigabytesPerSecond = "bandwidth_per_core_gb_s"
        }
    }

    /// Power drawn outside the SoC.
    public struct Power: Codable, Sendable, Equatable {
        /// Display at typical indoor brightness.
        public var screenWatts: Double
        /// Rest of the phone while awake (radios idle, sensors, PMIC, DRAM self-refresh).
        public var awakeWatts: Double
        /// Whole phone asleep with the screen off.
        public var sleepWatts: Double

        enum CodingKeys: String, CodingKey {
            case screenWatts = "screen_w"
            case awakeWatts = "awake_w"
            case sleepWatts = "sleep_w"
        }
    }

    /// The two-node thermal network, the OS governor and the thresholds apps see.
    public struct Thermal: Codable, Sendable, Equatable {
        public var socHeatCapacity: Double
        public var socToSkinResistance: Double
        public var skinHeatCapacity: Double
        public var skinToAmbientResistance: Double
        /// Junction temperature at which the hard cap (step_wise) removes one operating point per poll.
        public var socLimitCelsius: Double
        /// Leakage grows by this factor per 10 K above 25 °C.
        public var leakageFactorPerTenKelvin: Double
        public var governor: Governor
        /// Skin temperatures at which each status begins: Android `light` … `shutdown`, iOS `fair`,
        /// `serious`, `critical`.
        public var statusThresholdsCelsius: [String: Double]
        /// Skin temperature at which Android's thermal headroom is 0 (1.0 is SEVERE).
        public var headroomBaseCelsius: Double

        enum CodingKeys: String, CodingKey {
            case governor
            case socHeatCapacity = "soc_heat_capacity_j_per_k"
            case socToSkinResistance = "soc_to_skin_k_per_w"
            case skinHeatCapacity = "skin_heat_capacity_j_per_k"
            case skinToAmbientResistance = "skin_to_ambient_k_per_w"
            case socLimitCelsius = "soc_limit_c"
            case leakageFactorPerTenKelvin = "leakage_factor_per_10k"
            case statusThresholdsCelsius = "status_thresholds_c"
            case headroomBaseCelsius = "headroom_base_c"
        }
    }

    /// Linux power_allocator (IPA) on the skin sensor: a PI controller whose output is the SoC's
    /// power budget; sustainable power is its feed-forward.
    public struct Governor: Codable, Sendable, Equatable {
        public var switchOnCelsius: Double
        public var controlCelsius: Double
        public var sustainablePowerWatts: Double
        public var integralGain: Double
        public var pollSeconds: Double

        enum CodingKeys: String, CodingKey {
            case switchOnCelsius = "switch_on_c"
            case controlCelsius = "control_c"
            case sustainablePowerWatts = "sustainable_power_w"
            case integralGain = "k_i"
            case pollSeconds = "poll_s"
        }
    }

    /// A lithium-ion cell: open-circuit voltage curve, Thevenin model, charger, OS thresholds.
    public struct Battery: Codable, Sendable, Equatable {
        public var capacityMilliampHours: Double
        public var nominalVolts: Double
        /// State of charge (%) of each point of the OCV curve, descending or ascending.
        public var ocvStateOfChargePercent: [Double]
        public var ocvVolts: [Double]
        public var internalResistanceOhms: Double
        public var rcResistanceOhms: Double
        public var rcTimeConstantSeconds: Double
        /// Below this terminal voltage the phone shuts down.
        public var brownoutVolts: Double
        public var chargerWatts: Double
        /// Fraction of charger power that reaches the cell; the rest heats the skin.
        public var chargeEfficiency: Double
        /// Charging power tapers linearly from here to 100 % (constant-voltage phase).
        public var taperStartPercent: Double
        public var lowWarningPercent: Double
        public var criticalPercent: Double
        /// The OS turns on (or offers) battery saver / Low Power Mode below this level.
        public var powerSavePercent: Double
        /// Battery saver / Low Power Mode caps CPU clocks at this fraction of the maximum.
        public var powerSaveFrequencyFraction: Double

        enum CodingKeys: String, CodingKey {
            case capacityMilliampHours = "capacity_mah"
            case nominalVolts = "nominal_v"
            case ocvStateOfChargePercent = "ocv_soc_pct"
            case ocvVolts = "ocv_v"
            case internalResistanceOhms = "r0_ohm"
            case rcResistanceOhms = "r1_ohm"
            case rcTimeConstantSeconds = "rc_tau_s"
            case brownoutVolts = "brownout_v"
            case chargerWatts = "charger_w"
            case chargeEfficiency = "charge_efficiency"
            case taperStartPercent = "taper_start_pct"
            case lowWarningPercent = "low_warning_pct"
            case criticalPercent = "critical_pct"
            case powerSavePercent = "power_save_pct"
            case powerSaveFrequencyFraction = "power_save_frequency_fraction"
        }
    }
}

extension DeviceProfile {
    /// Bytes the OS lets the app keep resident.
    public var appMemoryLimitBytes: Int { Int(memory.appLimitMebibytes * 1_048_576) }

    /// Most CPU clusters, operating points per cluster and points on the battery's OCV curve a
    /// profile may have: every simulated step walks them, so they are bounded before use.
    public static let maximumClusters = 8
    public static let maximumOperatingPoints = 64
    public static let maximumCurvePoints = 256

    /// Reads and validates the profile at `path`; its `name` must be the file's name.
    public static func load(path: String) throws(DeviceError) -> DeviceProfile {
        let profile: DeviceProfile = try JSONFile.decode(path: path)
        try profile.validate(file: path)
        let fileName = String(path.split(separator: "/").last ?? "")
        let stem = fileName.hasSuffix(".json") ? String(fileName.dropLast(5)) : fileName
        guard profile.name == stem else {
            throw DeviceError(.invalidValue, file: path, field: "name",
                              reason: "'\(profile.name)' differs from the file's name '\(stem)'; a profile is named after its file")
        }
        return profile
    }

    /// Checks every number for range and units; the error names the file, the field and the reason.
    public func validate(file: String) throws(DeviceError) {
        let check = Validator(file: file)
        try check.nonEmpty(name, "name")
        try check.range(memory.ramGibibytes, "memory.ram_gib", 0.5...64, unit: "GiB")
        try check.range(memory.appLimitMebibytes, "memory.app_limit_mib", 16...(memory.ramGibibytes * 1024), unit: "MiB, at most the RAM")
        try check.range(memory.bandwidthGigabytesPerSecond, "memory.bandwidth_gb_s", 1...500, unit: "GB/s")
        try check.range(memory.achievableFraction, "memory.achievable_fraction", 0.05...1, unit: "a fraction")
        try check.range(memory.energyPicojoulesPerByte, "memory.energy_pj_per_byte", 1...1000, unit: "pJ/byte")
        try check.range(memory.frequencyCoupling, "memory.frequency_coupling", 0...2, unit: "an exponent")
        guard !cpu.clusters.isEmpty else { throw check.error("cpu.clusters", "needs at least one cluster") }
        guard cpu.clusters.count <= Self.maximumClusters else {
            throw check.error("cpu.clusters", "has \(cpu.clusters.count) clusters; at most \(Self.maximumClusters)")
        }
        for (index, cluster) in cpu.clusters.enumerated() {
            let prefix = "cpu.clusters[\(index)]"
            try check.nonEmpty(cluster.name, prefix + ".name")
            try check.range(Double(cluster.cores), prefix + ".cores", 1...64, unit: "cores")
            guard !cluster.frequenciesMegahertz.isEmpty else {
                throw check.error(prefix + ".frequencies_mhz", "needs at least one operating point")
            }
            guard cluster.frequenciesMegahertz.count <= Self.maximumOperatingPoints else {
                throw check.error(prefix + ".frequencies_mhz", "has \(cluster.frequenciesMegahertz.count) operating points; at most \(Self.maximumOperatingPoints)")
            }
            guard cluster.voltages.count == cluster.frequenciesMegahertz.count else {
                throw check.error(prefix + ".voltages", "has \(cluster.voltages.count) values but frequencies_mhz has \(cluster.frequenciesMegahertz.count)")
            }
            for (step, frequency) in cluster.frequenciesMegahertz.enumerated() {
                try check.range(frequency, prefix + ".frequencies_mhz[\(step)]", 100...5000, unit: "MHz")
                try check.range(cluster.voltages[step], prefix + ".voltages[\(step)]", 0.3...1.5, unit: "volts")
                if step > 0, frequency <= cluster.frequenciesMegahertz[step - 1] {
                    throw check.error(prefix + ".frequencies_mhz", "must ascend")
                }
                if step > 0, cluster.voltages[step] < cluster.voltages[step - 1] {
                    throw check.error(prefix + ".voltages[\(step)]",
                                      "\(cluster.voltages[step]) V is below the previous point's \(cluster.voltages[step - 1]) V; voltage must not decrease as frequency rises")
                }
            }
            try check.range(cluster.dynamicPowerCoefficient, prefix + ".dynamic_power_coefficient", 1...5000, unit: "µW/MHz/V²")
            try check.range(cluster.staticWattsPerCore, prefix + ".static_w_per_core", 0...2, unit: "watts")
            try check.range(cluster.flopsPerCycle, prefix + ".flops_per_cycle", 0.5...1024, unit: "FLOPs per cycle")
            try check.range(cluster.bandwidthPerCoreGigabytesPerSecond, prefix + ".bandwidth_per_core_gb_s", 0.5...200, unit: "GB/s")
        }
        let totalCores = cpu.clusters.reduce(0) { $0 + $1.cores }
        try check.range(Double(cpu.defaultThreads), "cpu.default_threads", 1...Double(totalCores), unit: "threads, at most the cores")
        try check.range(cpu.uncorePowerWatts, "cpu.uncore_power_w", 0...10, unit: "watts")
        try check.range(cpu.utilizationHalfLifeMilliseconds, "cpu.utilization_half_life_ms", 1...1000, unit: "milliseconds")
        try check.range(cpu.frequencyHeadroom, "cpu.frequency_headroom", 1...2, unit: "a factor")
        try check.range(power.screenWatts, "power.screen_w", 0...20, unit: "watts")
        try check.range(power.awakeWatts, "power.awake_w", 0...20, unit: "watts")
        try check.range(power.sleepWatts, "power.sleep_w", 0...5, unit: "watts")
        try check.range(thermal.socHeatCapacity, "thermal.soc_heat_capacity_j_per_k", 0.1...10_000, unit: "J/K")
        try check.range(thermal.socToSkinResistance, "thermal.soc_to_skin_k_per_w", 0.1...200, unit: "K/W")
        try check.range(thermal.skinHeatCapacity, "thermal.skin_heat_capacity_j_per_k", 1...100_000, unit: "J/K")
        try check.range(thermal.skinToAmbientResistance, "thermal.skin_to_ambient_k_per_w", 0.1...200, unit: "K/W")
        try check.range(thermal.socLimitCelsius, "thermal.soc_limit_c", 40...150, unit: "°C")
        try check.range(thermal.leakageFactorPerTenKelvin, "thermal.leakage_factor_per_10k", 1...3, unit: "a factor")
        try check.range(thermal.headroomBaseCelsius, "thermal.headroom_base_c", -20...60, unit: "°C")
        let governor = thermal.governor
        try check.range(governor.switchOnCelsius, "thermal.governor.switch_on_c", 10...80, unit: "°C")
        try check.range(governor.controlCelsius, "thermal.governor.control_c", governor.switchOnCelsius + 0.5...90, unit: "°C, above switch_on_c")
        try check.range(governor.sustainablePowerWatts, "thermal.governor.sustainable_power_w", 0.1...50, unit: "watts")
        try check.range(governor.integralGain, "thermal.governor.k_i", 0...100, unit: "W per K·poll")
        try check.range(governor.pollSeconds, "thermal.governor.poll_s", 0.01...60, unit: "seconds")
        let expected = platform == .android ? ThermalStatus.androidNames : ThermalStatus.iosNames
        for key in thermal.statusThresholdsCelsius.keys where !expected.contains(key) {
            throw check.error("thermal.status_thresholds_c.\(key)",
                              "is not a \(platform.rawValue) thermal status; expected \(expected.joined(separator: ", "))")
        }
        var previous = -Double.infinity
        for key in expected {
            guard let value = thermal.statusThresholdsCelsius[key] else {
                throw check.error("thermal.status_thresholds_c.\(key)", "is missing")
            }
            try check.range(value, "thermal.status_thresholds_c.\(key)", 20...100, unit: "°C")
            guard value > previous else { throw check.error("thermal.status_thresholds_c.\(key)", "must be above the previous status's threshold") }
            previous = value
        }
        try check.range(battery.capacityMilliampHours, "battery.capacity_mah", 100...50_000, unit: "mAh")
        try check.range(battery.nominalVolts, "battery.nominal_v", 2.5...5, unit: "volts")
        guard battery.ocvStateOfChargePercent.count <= Self.maximumCurvePoints else {
            throw check.error("battery.ocv_soc_pct", "has \(battery.ocvStateOfChargePercent.count) points; at most \(Self.maximumCurvePoints)")
        }
        guard battery.ocvStateOfChargePercent.count >= 2, battery.ocvStateOfChargePercent.count == battery.ocvVolts.count else {
            throw check.error("battery.ocv_v", "needs at least two points and one voltage per ocv_soc_pct value")
        }
        for (index, percent) in battery.ocvStateOfChargePercent.enumerated() {
            try check.range(percent, "battery.ocv_soc_pct[\(index)]", 0...100, unit: "percent")
            try check.range(battery.ocvVolts[index], "battery.ocv_v[\(index)]", 2.5...5, unit: "volts")
        }
        let sortedPercent = battery.ocvStateOfChargePercent.sorted()
        guard sortedPercent.first == 0, sortedPercent.last == 100 else {
            throw check.error("battery.ocv_soc_pct", "must cover 0 and 100 %")
        }
        // A cell's open-circuit voltage rises with its charge.
        let curve = zip(battery.ocvStateOfChargePercent, battery.ocvVolts).enumerated().sorted { $0.element.0 < $1.element.0 }
        for (lower, upper) in zip(curve, curve.dropFirst()) {
            guard upper.element.0 > lower.element.0 else {
                throw check.error("battery.ocv_soc_pct[\(upper.offset)]", "repeats \(upper.element.0) %; each point needs its own charge level")
            }
            guard upper.element.1 >= lower.element.1 else {
                throw check.error("battery.ocv_v[\(upper.offset)]",
                                  "\(upper.element.1) V at \(upper.element.0) % is below \(lower.element.1) V at \(lower.element.0) %; the voltage must not fall as the charge rises")
            }
        }
        try check.range(battery.internalResistanceOhms, "battery.r0_ohm", 0.001...2, unit: "ohms")
        try check.range(battery.rcResistanceOhms, "battery.r1_ohm", 0...2, unit: "ohms")
        try check.range(battery.rcTimeConstantSeconds, "battery.rc_tau_s", 0.1...10_000, unit: "seconds")
        try check.range(battery.brownoutVolts, "battery.brownout_v", 2.5...4, unit: "volts")
        try check.range(battery.chargerWatts, "battery.charger_w", 0...200, unit: "watts")
        try check.range(battery.chargeEfficiency, "battery.charge_efficiency", 0.5...1, unit: "a fraction")
        try check.range(battery.taperStartPercent, "battery.taper_start_pct", 1...100, unit: "percent")
        try check.range(battery.lowWarningPercent, "battery.low_warning_pct", 0...100, unit: "percent")
        try check.range(battery.criticalPercent, "battery.critical_pct", 0...battery.lowWarningPercent, unit: "percent, at most low_warning_pct")
        try check.range(battery.powerSavePercent, "battery.power_save_pct", 0...100, unit: "percent")
        try check.range(battery.powerSaveFrequencyFraction, "battery.power_save_frequency_fraction", 0.1...1, unit: "a fraction")
    }
}

/// Range checks that produce errors naming the file and the field.
struct Validator {
    let file: String

    func error(_ field: String, _ reason: String) -> DeviceError {
        DeviceError(.invalidValue, file: file, field: field, reason: reason)
    }

    func range(_ value: Double, _ field: String, _ range: ClosedRange<Double>, unit: String) throws(DeviceError) {
        guard value.isFinite else { throw error(field, "must be a finite number") }
        guard range.contains(value) else {
            if value < 0, range.lowerBound >= 0 {
                throw error(field, "must not be negative (got \(value); expected \(unit) in \(range.lowerBound)…\(range.upperBound))")
            }
            throw error(field, "\(value) is out of range; expected \(unit) in \(range.lowerBound)…\(range.upperBound)")
        }
    }

    func nonEmpty(_ value: String, _ field: String) throws(DeviceError) {
        guard !value.isEmpty else { throw error(field, "must not be empty") }
    }
}
