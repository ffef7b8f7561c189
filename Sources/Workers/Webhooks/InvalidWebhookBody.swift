/// A webhook body that is not what its source sends; the message names the field, and is the
/// `error` of the 400 answer.
public struct InvalidWebhookBody: Error, CustomStringConvertible, Equatable {
    public let description: String

    /// A body refused for `description`.
    public init(_ description: String) {
        self.description = description
    }

    /// The decoder's complaint in the door's words: `missing 'data.id'`, `'event' must be a string`.
    init(_ error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let context):
            self.init("missing '\(Self.path(context.codingPath + [key]))'")
        case .valueNotFound(_, let context):
            // A JSON null where a value is required counts as missing.
            self.init("missing '\(Self.path(context.codingPath))'")
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty {
                self.init("body must be a JSON object")
            } else {
                self.init("'\(Self.path(context.codingPath))' must be \(Self.describe(type))")
            }
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                self.init("body is not valid JSON")
            } else {
                self.init("'\(Self.path(context.codingPath))' is not valid: \(context.debugDescription)")
            }
        @unknown default:
            self.init("body is not valid JSON")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}
