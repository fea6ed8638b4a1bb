/// Two thermal nodes, the SoC junction and the phone's skin, joined by thermal resistances:
///
///     C_soc · dT_soc/dt  = P_soc − (T_soc − T_skin) / R_soc→skin
///     C_skin · dT_skin/dt = (T_soc − T_skin) / R_soc→skin + P_skin − (T_skin − T_ambient) / R_skin→ambient
///
/// `P_skin` is the heat that enters the case directly: display, rest of the board, battery I²R,
/// charger losses. Integrated with sub-steps short beside the SoC's time constant.
public struct ThermalNetwork: Sendable, Equatable {
    public var socCelsius: Double
    public var skinCelsius: Double
    public let socHeatCapacity: Double
    public let socToSkinResistance: Double
    public let skinHeatCapacity: Double
    public let skinToAmbientResistance: Double

    public init(thermal: DeviceProfile.Thermal, socCelsius: Double, skinCelsius: Double) {
        self.socCelsius = socCelsius
        self.skinCelsius = skinCelsius
        socHeatCapacity = thermal.socHeatCapacity
        socToSkinResistance = thermal.socToSkinResistance
        skinHeatCapacity = thermal.skinHeatCapacity
        skinToAmbientResistance = thermal.skinToAmbientResistance
    }

    /// The longest step that keeps explicit integration accurate: a twentieth of the fastest time constant.
    var maximumStep: Double {
        min(socHeatCapacity * socToSkinResistance, skinHeatCapacity * skinToAmbientResistance) / 20
    }

    /// Advances `seconds` with constant heat inputs.
    public mutating func advance(seconds: Double, socWatts: Double, skinWatts: Double, ambientCelsius: Double) {
        guard seconds > 0 else { return }
        let steps = max(1, Int((seconds / maximumStep).rounded(.up)))
        let step = seconds / Double(steps)
        for _ in 0..<steps {
            let socToSkin = (socCelsius - skinCelsius) / socToSkinResistance
            let skinToAir = (skinCelsius - ambientCelsius) / skinToAmbientResistance
            socCelsius += step * (socWatts - socToSkin) / socHeatCapacity
            skinCelsius += step * (socToSkin + skinWatts - skinToAir) / skinHeatCapacity
        }
    }

    /// Steady-state temperatures for constant inputs.
    public func steadyState(socWatts: Double, skinWatts: Double, ambientCelsius: Double) -> (soc: Double, skin: Double) {
        let skin = ambientCelsius + (socWatts + skinWatts) * skinToAmbientResistance
        return (skin + socWatts * socToSkinResistance, skin)
    }
}
