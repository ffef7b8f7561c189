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
    public init() {}
    public var postgresText: String? { nil }
}

/// A one-dimensional array parameter, sent as an array literal (`{"a","b",NULL}`).
public struct PostgresArray: PostgresEncodable {
    let elements: [String?]

    public init<Element: PostgresEncodable>(_ elements: [Element]) {
        self.elements = elements.map(\.postgresText)
    }

    public var postgresText: String? {
        // Built on UTF-8 bytes: elements can be whole webhook bodies, and per-Character iteration
        // of a large string is far slower than a byte loop.
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (offset, element) in elements.enumerated() {
            if offset > 0 { bytes.append(UInt8(ascii: ",")) }
            guard let element else {
                bytes.append(contentsOf: "NULL".utf8)
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
