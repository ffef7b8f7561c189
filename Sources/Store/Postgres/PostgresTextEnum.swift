/// A string-backed enum stored in a `text` column: it reads and writes its raw value, and a
/// value outside its cases is a decoding error rather than a silently different meaning.
public protocol PostgresTextEnum: RawRepresentable, PostgresDecodable, PostgresEncodable, CaseIterable
where RawValue == String {}

extension PostgresTextEnum {
    public init(postgresText: String) throws {
        guard let value = Self(rawValue: postgresText) else {
            throw PostgresError(kind: .decoding, message: "unknown \(Self.self) '\(postgresText.prefix(64))'")
        }
        self = value
    }

    public var postgresText: String? { rawValue }
}
