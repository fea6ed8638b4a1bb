/// Why a profile could not be read or a device simulation could not go on; the message names the
/// file, the field and the reason, on one line.
public struct DeviceError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable, Equatable {
        /// The file could not be read.
        case unreadableFile
        /// The file is not valid JSON.
        case invalidJSON
        /// A required field is absent.
        case missingField
        /// A field has the wrong JSON type (a string where a number belongs, …).
        case wrongType
        /// A number is out of range or in the wrong units, or values disagree.
        case invalidValue
        /// A key the schema does not have (a misspelling, or a field of another version).
        case unknownField
        /// A key written twice in one object.
        case duplicateField
    }

    public let code: Code
    /// The file the error is about.
    public let file: String
    /// The dotted path of the field (`battery.capacity_mah`), empty for whole-file errors.
    public let field: String
    public let reason: String

    public init(_ code: Code, file: String, field: String, reason: String) {
        self.code = code
        self.file = file
        self.field = field
        self.reason = reason
    }

    public var description: String {
        field.isEmpty ? "\(file): \(reason)" : "\(file): \(field): \(reason)"
    }
}
