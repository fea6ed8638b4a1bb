/// The thermal state an app can see, on Android's scale (`PowerManager.THERMAL_STATUS_*`).
///
/// iOS's `ProcessInfo.ThermalState` maps onto it: nominal → none, fair → light,
/// serious → severe, critical → critical.
public enum ThermalStatus: Int, Sendable, Comparable, CaseIterable, Codable {
    case none = 0
    case light = 1
    case moderate = 2
    case severe = 3
    case critical = 4
    case emergency = 5
    case shutdown = 6

    public static func < (left: ThermalStatus, right: ThermalStatus) -> Bool { left.rawValue < right.rawValue }

    /// Status names in a profile's `status_thresholds_c`, in ascending order.
    static let androidNames = ["light", "moderate", "severe", "critical", "emergency", "shutdown"]
    static let iosNames = ["fair", "serious", "critical"]

    /// The Android name (`SEVERE` is `severe`).
    public var name: String {
        switch self {
        case .none: "none"
        case .light: "light"
        case .moderate: "moderate"
        case .severe: "severe"
        case .critical: "critical"
        case .emergency: "emergency"
        case .shutdown: "shutdown"
        }
    }

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
