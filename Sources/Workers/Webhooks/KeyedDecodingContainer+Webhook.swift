extension KeyedDecodingContainer {
    /// The value at `key`, or `nil` when it is absent, `null` or of another type. For the fields
    /// the orchestrator only uses when they are there: a sender adding or reshaping one must not
    /// make the whole delivery unreadable.
    func lenient<T: Decodable>(_ type: T.Type, forKey key: Key) -> T? {
        (try? decodeIfPresent(type, forKey: key)) ?? nil
    }

    /// A whole number at `key` (`3.0` is one). JSONDecoder reports a fraction where an integer is
    /// expected with an error of its own that becomes "not valid JSON" without a path; this names
    /// the field instead.
    func decodeInteger(forKey key: Key) throws -> Int {
        do {
            return try decode(Int.self, forKey: key)
        } catch let error as DecodingError {
            throw error
        } catch {
            throw DecodingError.typeMismatch(
                Int.self, .init(codingPath: codingPath + [key], debugDescription: "\(error)"))
        }
    }
}
