/// The rows of one statement, copied out of libpq as text.
public struct QueryResult: Sendable {
    /// Column names in result order.
    public let columns: [String]
    /// Raw text values; `nil` is SQL NULL.
    public let rawRows: [[String?]]
    /// Rows returned, or rows changed by a command (`INSERT`/`UPDATE`/`DELETE` without `RETURNING`).
    public let affectedRows: Int

    init(columns: [String], rows: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.rawRows = rows
        self.affectedRows = affectedRows
    }

    /// The rows, each able to decode its columns by name.
    public var rows: [Row] {
        let index = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        return rawRows.map { Row(columnIndex: index, values: $0) }
    }

    /// The first row, if any.
    public var first: Row? { rows.first }
}

/// One result row.
public struct Row: Sendable {
    let columnIndex: [String: Int]
    let values: [String?]

    /// The raw text of a column (`nil` for NULL or an unknown column).
    public subscript(column: String) -> String? {
        guard let index = columnIndex[column] else { return nil }
        return values[index]
    }

    /// Decodes a column; a NULL decodes only into an `Optional`.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let index = columnIndex[column] else {
            throw PostgresError(kind: .decoding, message: "no column '\(column)' in result")
        }
        do {
            return try T.decode(postgresText: values[index])
        } catch var error as PostgresError {
            error.message = "column '\(column)': \(error.message)"
            throw error
        }
    }
}
