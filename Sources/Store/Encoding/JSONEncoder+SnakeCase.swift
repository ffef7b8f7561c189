import Foundation

extension JSONEncoder {
    /// The encoder of every admin answer built from records and reports: snake_case keys
    /// (`workItem` → `work_item`, `costUSD` → `cost_usd`) and dates as ISO 8601 with milliseconds,
    /// UTC. One configuration, so a record's JSON keys follow from its property names and only a
    /// renamed key needs a `CodingKeys` case.
    public static var snakeCase: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return encoder
    }
}
