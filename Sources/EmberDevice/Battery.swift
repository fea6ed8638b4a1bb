/// A lithium-ion cell as a Thevenin circuit: open-circuit voltage from the state of charge, a
/// series resistance R0 and one RC pair (R1, τ). The phone draws constant power, so the current
/// solves P = (OCV − V1 − I·R0)·I.
public struct BatteryModel: Sendable {
    public let profile: DeviceProfile.Battery
    /// State of charge, 0…100 %.
    public private(set) var stateOfChargePercent: Double
    /// Voltage across the RC pair (polarisation).
    public private(set) var polarisationVolts: Double = 0
    /// Current out of the cell in the last step (negative while charging).
    public private(set) var currentAmps: Double = 0
    /// Terminal voltage in the last step.
    public private(set) var terminalVolts: Double
    /// Charge the cell has delivered (discharge only: charging does not subtract), in coulombs.
    public private(set) var dischargedCoulombs: Double = 0
    /// Set once the terminal voltage fell below the brown-out level or the cell ran empty.
    public private(set) var brownedOut = false

    private let curve: [(percent: Double, volts: Double)]

    public init(profile: DeviceProfile.Battery, stateOfChargePercent: Double) {
        self.profile = profile
        self.stateOfChargePercent = min(100, max(0, stateOfChargePercent))
        curve = zip(profile.ocvStateOfChargePercent, profile.ocvVolts).map { ($0, $1) }.sorted { $0.percent < $1.percent }
        terminalVolts = 0
        terminalVolts = openCircuitVolts
    }

    /// Capacity in coulombs.
    public var capacityCoulombs: Double { profile.capacityMilliampHours * 3.6 }

    /// Percent of capacity the cell has delivered (`dischargedCoulombs`): what was drawn, whatever
    /// a charger put back meanwhile.
    public var dischargedPercent: Double { dischargedCoulombs / capacityCoulombs * 100 }

    /// Energy when full at the nominal voltage, in joules.
    public var nominalEnergyJoules: Double { capacityCoulombs * profile.nominalVolts }

    /// Open-circuit voltage at the present state of charge, interpolated on the curve.
    public var openCircuitVolts: Double { Self.interpolate(curve, stateOfChargePercent) }

    static func interpolate(_ curve: [(percent: Double, volts: Double)], _ percent: Double) -> Double {
        guard let first = curve.first, let last = curve.last else { return 0 }
        if percent <= first.percent { return first.volts }
        if percent >= last.percent { return last.volts }
        for index in 1..<curve.count where percent <= curve[index].percent {
            let low = curve[index - 1], high = curve[index]
            let fraction = (percent - low.percent) / (high.percent - low.percent)
            return low.volts + fraction * (high.volts - low.volts)
        }
        return last.volts
    }

    /// Terminal voltage if `loadWatts` were drawn now (0 when the cell cannot deliver it).
    public func predictedTerminalVolts(loadWatts: Double) -> Double {
        let available = openCircuitVolts - polarisationVolts
        let resistance = profile.internalResistanceOhms
        let discriminant = available * available - 4 * resistance * loadWatts
        guard discriminant >= 0 else { return 0 }
        let current = (available - discriminant.squareRoot()) / (2 * resistance)
        return available - current * resistance
    }

    /// Heat dissipated in the cell at the last step's current (R0 and R1), in watts.
    public var heatWatts: Double {
        currentAmps * currentAmps * profile.internalResistanceOhms
            + (profile.rcResistanceOhms > 0 ? polarisationVolts * polarisationVolts / profile.rcResistanceOhms : 0)
    }

    /// Power a charger rated `ratedWatts` delivers at this state of charge (constant-current,
    /// then a linear taper to zero at 100 %) and battery temperature (`ChargingWindow`); 0 when
    /// `ratedWatts` is 0 (unplugged), when the cell is too cold or too hot to charge, or when its
    /// open-circuit voltage has reached the window's lowered regulation voltage.
    public func chargerInputWatts(ratedWatts: Double, batteryCelsius: Double = 25) -> Double {
        let window = ChargingWindow.at(celsius: batteryCelsius)
        guard window.currentFraction > 0, openCircuitVolts < window.regulationVolts else { return 0 }
        let taper = profile.taperStartPercent
        if stateOfChargePercent <= taper || taper >= 100 { return ratedWatts * window.currentFraction }
        return ratedWatts * window.currentFraction * max(0, (100 - stateOfChargePercent) / (100 - taper))
    }

    /// Draws `loadWatts` for `seconds` while a charger rated `chargerRatedWatts` (0: unplugged)
    /// supplies what the cell at `batteryCelsius` accepts; returns the heat the charger's losses
    /// put into the case.
    @discardableResult
    public mutating func advance(seconds: Double, loadWatts: Double, chargerRatedWatts: Double = 0,
                                 batteryCelsius: Double = 25) -> Double {
        guard seconds > 0 else { return 0 }
        let chargerWatts = chargerInputWatts(ratedWatts: chargerRatedWatts, batteryCelsius: batteryCelsius)
        let deliveredWatts = chargerWatts * profile.chargeEfficiency
        let netWatts = loadWatts - deliveredWatts  // drawn from the cell; negative charges it
        let open = openCircuitVolts
        let resistance = profile.internalResistanceOhms
        let available = open - polarisationVolts
        var current: Double
        if netWatts >= 0 {
            let discriminant = available * available - 4 * resistance * netWatts
            if discriminant < 0 {
                // The cell cannot deliver this power at any current: the voltage collapses.
                brownedOut = true
                current = available / (2 * resistance)
            } else {
                current = (available - discriminant.squareRoot()) / (2 * resistance)
            }
        } else {
            current = netWatts / max(open, 0.1)
        }
        currentAmps = current
        terminalVolts = available - current * resistance
        // The RC pair relaxes toward I·R1 with time constant τ (exact for a constant current).
        let tau = profile.rcTimeConstantSeconds
        let target = current * profile.rcResistanceOhms
        polarisationVolts = target + (polarisationVolts - target) * _exp(-seconds / tau)
        stateOfChargePercent -= current * seconds / capacityCoulombs * 100
        if current > 0 { dischargedCoulombs += current * seconds }
        stateOfChargePercent = min(100, max(0, stateOfChargePercent))
        if netWatts > 0 && (terminalVolts < profile.brownoutVolts || stateOfChargePercent <= 0) {
            brownedOut = true
        }
        return chargerWatts - deliveredWatts
    }
}

/// How much a phone charges at a battery temperature: the JEITA guideline as chargers implement it
/// (../shared/research/power-thermal.md, "charging in heat": TI E2E battery-management thread on
/// JEITA; Zebra TC53e charging specification). Normal charging at 10–45 °C; 0–10 °C a reduced
/// current (about 0.5 C) and a lower regulation voltage (4.1 V); 45–50 °C slowed, regulation
/// voltage ≈ 4.15 V; below 0 °C or from 50 °C none — shipping phones stop at 50 °C rather than
/// JEITA's 60 °C (Zebra documents stopping above 50 °C).
public struct ChargingWindow: Sendable, Equatable {
    /// Fraction of the charger's rated power the cell accepts (0: charging stopped).
    public var currentFraction: Double
    /// Charging ends once the open-circuit voltage reaches this.
    public var regulationVolts: Double

    /// The windows, by their lower temperature bound (°C), coldest first.
    public static let windows: [(fromCelsius: Double, window: ChargingWindow)] = [
        (-.infinity, ChargingWindow(currentFraction: 0, regulationVolts: 0)),
        (0, ChargingWindow(currentFraction: 0.5, regulationVolts: 4.1)),
        (10, ChargingWindow(currentFraction: 1, regulationVolts: .infinity)),
        (45, ChargingWindow(currentFraction: 0.5, regulationVolts: 4.15)),
        (50, ChargingWindow(currentFraction: 0, regulationVolts: 0)),
    ]

    /// The window a battery at `celsius` is in.
    public static func at(celsius: Double) -> ChargingWindow {
        windows.last { celsius >= $0.fromCelsius }?.window ?? windows[0].window
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@inline(__always) func _exp(_ value: Double) -> Double { exp(value) }
