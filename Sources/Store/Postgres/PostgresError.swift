/// An error from the database layer, carrying the server's SQLSTATE when there is one.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// Broad classes of failure that callers act on differently.
    public enum Kind: String, Sendable {
        /// The server answered with an error (see `sqlState`).
        case server
        /// The connection broke during or before a statement.
        case connectionLost
        /// A new connection could not be established.
        case connectFailed
        /// No pooled connection became free before the acquire timeout.
        case poolTimeout
        /// The pool has been shut down.
        case poolClosed
        /// A value from the server could not be decoded into the requested Swift type.
        case decoding
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// The five-character SQLSTATE code, when the server sent one.
    public var sqlState: String?
    /// The primary, human-readable message.
    public var message: String
    /// The server's DETAIL field, if any.
    public var detail: String?
    /// The server's HINT field, if any.
    public var hint: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, hint: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    /// SQLSTATE 23505.
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// SQLSTATE 40001.
    public var isSerializationFailure: Bool { sqlState == "40001" }
    /// SQLSTATE 40P01.
    public var isDeadlock: Bool { sqlState == "40P01" }
    /// True when the connection is gone: a lost socket, a class 08 error, or the server shutting the session down.
    public var isConnectionLost: Bool {
        if kind == .connectionLost || kind == .connectFailed { return true }
        guard let sqlState else { return false }
        // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now
        return sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }
    /// True when retrying the whole operation later may succeed.
    public var isTransient: Bool {
        isConnectionLost || isSerializationFailure || isDeadlock || kind == .poolTimeout
    }

    public var description: String {
        var text = "PostgresError(\(kind.rawValue)"
        if let sqlState { text += ", sqlstate \(sqlState)" }
        text += "): \(message)"
        if let detail { text += " — \(detail)" }
        return text
    }
}
