/// Why a simulation cannot run as configured: the setting (or scenario event) and the limit,
/// on one line.
public struct SimulationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The setting or scenario field at fault (`sample_interval_s`, `events[2]`).
    public let field: String
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}
