import Foundation

extension Date {
    /// Parses an ISO 8601 date-time such as Plane's `2026-06-01T09:02:40.100200Z`, keeping the
    /// fraction to the microsecond: Plane stamps microseconds, and two updates a few microseconds
    /// apart must still order (Foundation's ISO 8601 parsing drops or refuses the fraction).
    /// `nil` for anything else, a bare date included.
    public init?(timestamp text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19, bytes[10] == UInt8(ascii: "T"), let date = PostgresTimestamp.parse(text) else {
            return nil
        }
        self = date
    }

    /// The date as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, UTC), for messages.
    public var timestampText: String { PostgresTimestamp.format(self) }
}
