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
}

/// What the app and the scheduler can read about heat: the platform's thermal status and headroom.
///
/// On Android: `PowerManager.getCurrentThermalStatus()` and `getThermalHeadroom(forecastSeconds)`;
/// on iOS: `ProcessInfo.thermalState` (see ThermalStatus). The simulator implements it from the
/// device model; an app port implements it from those APIs.
public protocol ThermalSource {
    var thermalStatus: ThermalStatus { get }
    /// 0 when cool, 1.0 at SEVERE, extrapolated `forecastSeconds` ahead (0…60).
    func thermalHeadroom(forecastSeconds: Double) -> Double
}

/// What the app can read about power: battery level, charger, battery saver / Low Power Mode.
///
/// Android: `BatteryManager` (`BATTERY_PROPERTY_CAPACITY`, `isCharging()`), `PowerManager.isPowerSaveMode()`;
/// iOS: `UIDevice.batteryLevel`, `batteryState`, `ProcessInfo.isLowPowerModeEnabled`.
public protocol PowerSource {
    var batteryPercent: Double { get }
    var isCharging: Bool { get }
    var isPowerSaveMode: Bool { get }
}
