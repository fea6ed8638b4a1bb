import EmberCore

extension ThermalStatus {
    /// Status names in a profile's `status_thresholds_c`, in ascending order.
    static let androidNames = ["light", "moderate", "severe", "critical", "emergency", "shutdown"]
    static let iosNames = ["fair", "serious", "critical"]

    /// The status a profile's thresholds give for a skin temperature.
    public static func from(skinCelsius: Double, profile: DeviceProfile) -> ThermalStatus {
        let thresholds = profile.thermal.statusThresholdsCelsius
        switch profile.platform {
        case .android:
            var status = ThermalStatus.none
            for (index, name) in androidNames.enumerated() where skinCelsius >= thresholds[name] ?? .infinity {
                status = ThermalStatus(rawValue: index + 1)!
            }
            return status
        case .ios:
            if skinCelsius >= thresholds["critical"] ?? .infinity { return .critical }
            if skinCelsius >= thresholds["serious"] ?? .infinity { return .severe }
            if skinCelsius >= thresholds["fair"] ?? .infinity { return .light }
            return .none
        }
    }

    /// The skin temperature at which SEVERE (iOS: serious) begins.
    public static func severeThreshold(_ profile: DeviceProfile) -> Double {
        let thresholds = profile.thermal.statusThresholdsCelsius
        return (profile.platform == .android ? thresholds["severe"] : thresholds["serious"]) ?? 45
    }
}
