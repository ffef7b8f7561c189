import Foundation

/// A Swift type that can be read from PostgreSQL's text result format.
public protocol PostgresDecodable: Sendable {
    /// Decodes from the column's text; `nil` is SQL NULL.
    static func decode(postgresText: String?) throws -> Self
    /// Decodes from non-NULL text.
    init(postgresText: String) throws
}

extension PostgresDecodable {
    public static func decode(postgresText: String?) throws -> Self {
        guard let postgresText else {
            throw PostgresError(kind: .decoding, message: "unexpected NULL for \(Self.self)")
        }
        return try Self(postgresText: postgresText)
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText: String?) throws -> Self {
        guard let postgresText else { return nil }
        return try Wrapped(postgresText: postgresText)
    }

    public init(postgresText: String) throws {
        self = try Wrapped(postgresText: postgresText)
    }
}

private func decodingError<T>(_ text: String, _ type: T.Type) -> PostgresError {
    PostgresError(kind: .decoding, message: "cannot read '\(text.prefix(64))' as \(type)")
}

extension String: PostgresDecodable {
    public init(postgresText: String) { self = postgresText }
}

extension Int: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = Int(postgresText) else { throw decodingError(postgresText, Int.self) }
        self = value
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = Int32(postgresText) else { throw decodingError(postgresText, Int32.self) }
        self = value
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = Int64(postgresText) else { throw decodingError(postgresText, Int64.self) }
        self = value
    }
}

extension Double: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = Double(postgresText) else { throw decodingError(postgresText, Double.self) }
        self = value
    }
}

extension Bool: PostgresDecodable {
    public init(postgresText: String) throws {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw decodingError(postgresText, Bool.self)
        }
    }
}

extension UUID: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = UUID(uuidString: postgresText) else { throw decodingError(postgresText, UUID.self) }
        self = value
    }
}

extension Date: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = PostgresTimestamp.parse(postgresText) else { throw decodingError(postgresText, Date.self) }
        self = value
    }
}

/// A `json`/`jsonb` value kept as its text; decode it into a `Decodable` type when needed.
public struct JSONB: PostgresEncodable, PostgresDecodable, Hashable {
    /// The JSON text.
    public var text: String

    /// Wraps JSON text as is.
    public init(text: String) { self.text = text }

    /// Encodes a value as JSON.
    public init<T: Encodable>(encoding value: T) throws {
        let data = try JSONEncoder().encode(value)
        self.text = String(decoding: data, as: UTF8.self)
    }

    public init(postgresText: String) { self.text = postgresText }
    public var postgresText: String? { text }

    /// Decodes the JSON into `T`.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}

/// A one-dimensional integer array (`bigint[]`, `int[]`) read from its text form, e.g. `{1,2,3}`.
public struct PostgresIntegerArray: PostgresDecodable, Equatable {
    /// The elements (NULL elements are not allowed).
    public let values: [Int64]

    public init(postgresText: String) throws {
        guard postgresText.hasPrefix("{"), postgresText.hasSuffix("}") else {
            throw PostgresError(
                kind: .decoding, message: "cannot read '\(postgresText.prefix(64))' as an integer array")
        }
        let body = postgresText.dropFirst().dropLast()
        values =
            try body.isEmpty
            ? []
            : body.split(separator: ",").map { element in
                guard let value = Int64(element) else {
                    throw PostgresError(
                        kind: .decoding, message: "cannot read array element '\(element.prefix(32))' as an integer")
                }
                return value
            }
    }
}

/// A one-dimensional `text[]` read from its text form (`{a,"b c",NULL}`); NULL elements are dropped.
public struct PostgresTextArray: PostgresDecodable, Equatable {
    /// The elements.
    public let values: [String]

    public init(postgresText: String) throws {
        guard postgresText.hasPrefix("{"), postgresText.hasSuffix("}") else {
            throw PostgresError(kind: .decoding, message: "cannot read '\(postgresText.prefix(64))' as a text array")
        }
        var values: [String] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var escaped = false
        for character in postgresText.dropFirst().dropLast() {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" && quoted {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
                wasQuoted = true
            } else if character == "," && !quoted {
                if wasQuoted || current != "NULL" { values.append(current) }
                current = ""
                wasQuoted = false
            } else {
                current.append(character)
            }
        }
        if postgresText.count > 2, wasQuoted || current != "NULL" { values.append(current) }
        self.values = values
    }
}
