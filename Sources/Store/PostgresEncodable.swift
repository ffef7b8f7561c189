import Foundation

/// A Swift value that can be sent as a statement parameter (in PostgreSQL's text format).
public protocol PostgresEncodable: Sendable {
    /// The text form of the value; `nil` sends SQL NULL.
    var postgresText: String? { get }
}

extension String: PostgresEncodable {
    public var postgresText: String? { self }
}

extension Int: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

extension Int32: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

extension Int64: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

extension Bool: PostgresEncodable {
    public var postgresText: String? { self ? "true" : "false" }
}

extension Double: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

extension UUID: PostgresEncodable {
    public var postgresText: String? { uuidString.lowercased() }
}

extension Date: PostgresEncodable {
    public var postgresText: String? { PostgresTimestamp.format(self) }
}

extension Duration: PostgresEncodable {
    /// Sent as seconds (a `double precision`); SQL multiplies by `interval '1 second'`.
    public var postgresText: String? { String(seconds) }

    /// The duration in seconds, as a floating-point number.
    public var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
}

/// SQL NULL, for parameter lists where a typed `nil` would be awkward.
public struct PostgresNull: PostgresEncodable {
    /// Creates a NULL parameter.
    public init() {}
    public var postgresText: String? { nil }
}

/// A one-dimensional array parameter, sent as an array literal (`{"a","b",NULL}`).
public struct PostgresArray: PostgresEncodable {
    let elements: [String?]

    /// Creates an array of any encodable elements.
    public init<Element: PostgresEncodable>(_ elements: [Element]) {
        self.elements = elements.map(\.postgresText)
    }

    public var postgresText: String? {
        var text = "{"
        for (offset, element) in elements.enumerated() {
            if offset > 0 { text += "," }
            guard let element else {
                text += "NULL"
                continue
            }
            text += "\""
            for character in element {
                if character == "\"" || character == "\\" { text += "\\" }
                text.append(character)
            }
            text += "\""
        }
        return text + "}"
    }
}
