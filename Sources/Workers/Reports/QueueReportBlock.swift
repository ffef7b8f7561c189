import Store

/// One subsystem's block of `GET /queue`: its key and how its figures are read.
///
/// A subsystem adds its block by conforming a type here and listing it where the report is wired;
/// the report itself does not change.
public protocol QueueReportBlock: Sendable {
    /// What the block's figures encode as (with `JSONEncoder.snakeCase`).
    associatedtype Body: Encodable & Sendable

    /// The block's key in the report.
    var key: String { get }

    /// Reads the subsystem's figures now. `leader` is the leading replica's id, if any.
    func read(from pool: ConnectionPool, leader: String?) async throws -> Body
}
