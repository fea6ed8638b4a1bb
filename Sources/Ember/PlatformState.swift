import EmberCore
import EmberScheduler

/// What the phone reports about heat and power, pushed by the app into `Engine.update(_:)` whenever
/// it changes (iOS: `ProcessInfo.thermalStateDidChangeNotification`, `NSProcessInfoPowerStateDidChange`,
/// `UIDevice.batteryLevelDidChangeNotification`; Android: `OnThermalStatusChangedListener`,
/// `ACTION_BATTERY_CHANGED`, `ACTION_POWER_SAVE_MODE_CHANGED`, `ACTION_SCREEN_ON/OFF`).
public struct PlatformState: Sendable, Equatable {
    /// The thermal status on Android's scale (see `thermalStatus(iOSThermalState:)`).
    public var thermalStatus: ThermalStatus
    /// Thermal headroom now (Android `getThermalHeadroom(0)`: 0 cool, 1.0 at SEVERE); nil: estimated
    /// from `thermalStatus` (iOS has no headroom).
    public var thermalHeadroom: Double?
    /// Thermal headroom forecast ahead (Android `getThermalHeadroom(30)`); nil: `thermalHeadroom`.
    public var thermalHeadroomForecast: Double?
    /// Battery level 0…100 (iOS `batteryLevel × 100`; Android `BATTERY_PROPERTY_CAPACITY`); nil: unknown, taken as full.
    public var batteryPercent: Double?
    public var isCharging: Bool
    /// iOS Low Power Mode, Android battery saver.
    public var isLowPowerMode: Bool
    /// The app is in the foreground with the screen on (Android `PowerManager.isInteractive()`).
    public var isForeground: Bool

    public init(thermalStatus: ThermalStatus = .none, thermalHeadroom: Double? = nil, thermalHeadroomForecast: Double? = nil,
                batteryPercent: Double? = nil, isCharging: Bool = false, isLowPowerMode: Bool = false, isForeground: Bool = true) {
        self.thermalStatus = thermalStatus
        self.thermalHeadroom = thermalHeadroom
        self.thermalHeadroomForecast = thermalHeadroomForecast
        self.batteryPercent = batteryPercent
        self.isCharging = isCharging
        self.isLowPowerMode = isLowPowerMode
        self.isForeground = isForeground
    }

    /// A cool phone on the charger in the foreground (also a desktop or CI machine).
    public static let nominal = PlatformState(isCharging: true)

    /// iOS `ProcessInfo.ThermalState.rawValue` (nominal 0, fair 1, serious 2, critical 3) on
    /// Android's scale: nominal → none, fair → light, serious → severe, critical → critical.
    /// Unknown values count as critical (the safe side).
    public static func thermalStatus(iOSThermalState rawValue: Int) -> ThermalStatus {
        switch rawValue {
        case 0: .none
        case 1: .light
        case 2: .severe
        default: .critical
        }
    }

    /// Android `PowerManager.THERMAL_STATUS_*` (NONE 0 … SHUTDOWN 6). Unknown values count as the
    /// nearest end of the scale.
    public static func thermalStatus(androidThermalStatus value: Int) -> ThermalStatus {
        ThermalStatus(rawValue: min(max(value, 0), ThermalStatus.shutdown.rawValue)) ?? .none
    }

    /// Headroom estimated from a status, for platforms without a headroom reading: the middle of the
    /// band where Android reports that status (SEVERE begins at 1.0). The policy slows replies from
    /// 0.75 and pauses them only from 0.96, so `severe` (iOS `serious`) slows a reply to reading
    /// speed on one thread and `critical` pauses it while it lasts.
    public static func estimatedHeadroom(_ status: ThermalStatus) -> Double {
        switch status {
        case .none: 0.3
        case .light: 0.6
        case .moderate: 0.8
        case .severe: 0.92
        case .critical: 0.98
        case .emergency, .shutdown: 1.2
        }
    }

    /// Headroom now: the reading, or the estimate from the status.
    public var headroomNow: Double { thermalHeadroom ?? Self.estimatedHeadroom(thermalStatus) }
    /// Headroom ahead: the forecast, else the reading now, else the estimate.
    public var headroomAhead: Double { thermalHeadroomForecast ?? headroomNow }
}

/// A `PlatformState` as the thermal, power and device source of a `TokenScheduler`: a fixed
/// state (`ember notes summarize --thermal … --battery …`), or the state last pushed to an
/// engine (`Engine.update`), read before each step.
public struct PlatformStateSource: ThermalSource, PowerSource, DeviceStateSource, Sendable {
    private let current: @Sendable () -> PlatformState

    /// A source that always reports `state`.
    public init(_ state: PlatformState) { current = { state } }

    /// A source that reports what `current` returns when asked.
    init(reading current: @escaping @Sendable () -> PlatformState) { self.current = current }

    public var thermalStatus: ThermalStatus { current().thermalStatus }
    public func thermalHeadroom(forecastSeconds: Double) -> Double {
        let state = current()
        return forecastSeconds > 0 ? state.headroomAhead : state.headroomNow
    }
    public var batteryPercent: Double { current().batteryPercent ?? 100 }
    public var isCharging: Bool { current().isCharging }
    public var isPowerSaveMode: Bool { current().isLowPowerMode }
    public var isScreenOn: Bool { current().isForeground }
    public var availableCores: Int? { nil }
}
