/// Speed and power of the CPU and memory at an operating point: the roofline that turns model
/// work into time and energy.
///
/// Throttle level 0 runs every cluster at its top frequency; level n runs each cluster n steps
/// lower (at least its lowest step). Inference threads fill the clusters in profile order.
public struct ProcessorModel: Sendable {
    public let profile: DeviceProfile

    public init(profile: DeviceProfile) { self.profile = profile }

    /// The deepest throttle level (every cluster at its lowest step).
    public var deepestLevel: Int { profile.cpu.clusters.map { $0.frequenciesMegahertz.count - 1 }.max() ?? 0 }

    /// Step index of `cluster` at throttle `level`.
    func step(_ cluster: DeviceProfile.Cluster, level: Int) -> Int {
        max(0, cluster.frequenciesMegahertz.count - 1 - level)
    }

    /// Frequency of the fastest cluster at `level`, in MHz.
    public func leadFrequency(level: Int) -> Double {
        let cluster = profile.cpu.clusters[0]
        return cluster.frequenciesMegahertz[step(cluster, level: level)]
    }

    /// The shallowest level whose lead frequency is at most `fraction` of the maximum.
    public func level(atMostFraction fraction: Double) -> Int {
        let top = leadFrequency(level: 0)
        for level in 0...deepestLevel where leadFrequency(level: level) <= fraction * top + 1e-9 {
            return level
        }
        return deepestLevel
    }

    /// Cores of each cluster that `threads` occupy.
    public func placement(threads: Int) -> [(cluster: DeviceProfile.Cluster, cores: Int)] {
        var remaining = max(1, threads)
        var result: [(DeviceProfile.Cluster, Int)] = []
        for cluster in profile.cpu.clusters where remaining > 0 {
            let used = min(cluster.cores, remaining)
            result.append((cluster, used))
            remaining -= used
        }
        return result
    }

    /// FLOPs per second the threads sustain at `level`.
    public func computeRate(level: Int, threads: Int) -> Double {
        placement(threads: threads).reduce(0) { total, entry in
            let frequency = entry.cluster.frequenciesMegahertz[step(entry.cluster, level: level)] * 1e6
            return total + Double(entry.cores) * frequency * entry.cluster.flopsPerCycle
        }
    }

    /// Bytes per second the threads pull from DRAM at `level`.
    public func bandwidth(level: Int, threads: Int) -> Double {
        let memory = profile.memory
        let cores = placement(threads: threads).reduce(0) { $0 + Double($1.cores) * $1.cluster.bandwidthPerCoreGigabytesPerSecond }
        let ceiling = min(memory.bandwidthGigabytesPerSecond * memory.achievableFraction, cores)
        let relative = leadFrequency(level: level) / leadFrequency(level: 0)
        return ceiling * 1e9 * pow(relative, memory.frequencyCoupling)
    }

    /// Watts the busy cores and the uncore draw at `level` with the SoC at `socCelsius`
    /// (DRAM traffic excluded: see `dramWatts`).
    public func busyCoreWatts(level: Int, threads: Int, socCelsius: Double) -> Double {
        let leakage = pow(profile.thermal.leakageFactorPerTenKelvin, (socCelsius - 25) / 10)
        return placement(threads: threads).reduce(profile.cpu.uncorePowerWatts) { total, entry in
            let index = step(entry.cluster, level: level)
            let frequency = entry.cluster.frequenciesMegahertz[index]
            let volts = entry.cluster.voltages[index]
            let dynamic = entry.cluster.dynamicPowerCoefficient * frequency * volts * volts * 1e-6
            return total + Double(entry.cores) * (dynamic + entry.cluster.staticWattsPerCore * leakage)
        }
    }

    /// Watts of DRAM and interconnect for `bytesPerSecond` of traffic.
    public func dramWatts(bytesPerSecond: Double) -> Double {
        bytesPerSecond * profile.memory.energyPicojoulesPerByte * 1e-12
    }

    /// SoC watts while idle and awake (uncore mostly clock-gated).
    public var idleSocWatts: Double { profile.cpu.uncorePowerWatts * 0.25 }

    /// Seconds `work` takes at `level` on `threads`: the slower of arithmetic and memory traffic.
    public func seconds(for work: WorkCost, level: Int, threads: Int) -> Double {
        let compute = work.flops / computeRate(level: level, threads: threads)
        let memory = work.bytes / bandwidth(level: level, threads: threads)
        return max(compute, memory)
    }

    /// SoC watts while running `work` at `level`: cores, uncore and the DRAM traffic it causes.
    public func busySocWatts(for work: WorkCost, level: Int, threads: Int, socCelsius: Double) -> Double {
        let time = seconds(for: work, level: level, threads: threads)
        return busyCoreWatts(level: level, threads: threads, socCelsius: socCelsius)
            + dramWatts(bytesPerSecond: time > 0 ? work.bytes / time : 0)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
