import Foundation

/// Decodes JSON files into `Decodable` values with errors that name the file and the field.
public enum JSONFile {
    /// Reads `path` and decodes it; every failure is a `DeviceError` naming the file and field.
    public static func decode<Value: Decodable>(path: String, as type: Value.Type = Value.self) throws(DeviceError) -> Value {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DeviceError(.unreadableFile, file: path, field: "", reason: "cannot read the file (missing, or not readable)")
        }
        return try decode(data, file: path)
    }

    /// Decodes `data`, naming `file` in errors.
    public static func decode<Value: Decodable>(_ data: Data, file: String, as type: Value.Type = Value.self) throws(DeviceError) -> Value {
        do {
            return try JSONDecoder().decode(Value.self, from: data)
        } catch let error as DecodingError {
            throw describe(error, file: file)
        } catch let error as DeviceError {
            throw error
        } catch {
            throw DeviceError(.invalidJSON, file: file, field: "", reason: "\(error)")
        }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var result = ""
        for key in codingPath {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += result.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return result
    }

    static func describe(_ error: DecodingError, file: String) -> DeviceError {
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return DeviceError(.missingField, file: file, field: field, reason: "is missing")
        case .typeMismatch(let type, let context):
            return DeviceError(.wrongType, file: file, field: path(context.codingPath),
                               reason: "expected \(typeName(type)); write plain numbers in the units the schema names (Profiles/README.md, Simulator/Scenarios/README.md)")
        case .valueNotFound(let type, let context):
            return DeviceError(.missingField, file: file, field: path(context.codingPath), reason: "is null; expected \(typeName(type))")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                return DeviceError(.invalidJSON, file: file, field: "", reason: "is not valid JSON" + (underlying.map { " (\($0))" } ?? ""))
            }
            return DeviceError(.invalidValue, file: file, field: path(context.codingPath), reason: context.debugDescription)
        @unknown default:
            return DeviceError(.invalidJSON, file: file, field: "", reason: "\(error)")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type: return "a whole number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a \(name)"
        }
    }
}
