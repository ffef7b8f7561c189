/// A borrowed database connection, valid inside the `withConnection`/`withTransaction` scope that gave it.
public struct Connection: Sendable {
    let raw: PGConnection
    let pool: ConnectionPool

    /// Runs one parameterised statement (`$1`, `$2`, …); parameters are never spliced into the SQL text.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> QueryResult {
        let raw = self.raw
        let texts = parameters.map(\.postgresText)
        return try await pool.run { try raw.exec(sql, texts) }
    }

    /// Runs a fixed statement without parameters (transaction control and the like).
    public func execute(_ sql: StaticString) async throws {
        let raw = self.raw
        let text = "\(sql)"
        _ = try await pool.run { try raw.exec(text, []) }
    }

    /// Runs a trusted multi-statement script with the simple query protocol (migration files only).
    func executeScript(_ sql: String) async throws {
        let raw = self.raw
        _ = try await pool.run { try raw.execSimple(sql) }
    }

    /// The server process id of this session (useful for `pg_terminate_backend` in tests and diagnostics).
    public var backendPID: Int32 { raw.backendPID }
}
