import CLibPQ
import Foundation
import Logging

/// One libpq connection. Internal: the rest of the package sees `Connection`, never a C type.
///
/// `@unchecked Sendable` because it wraps a `PGconn *`. Invariant: at any moment exactly one owner
/// uses it — the pool hands it to one borrower at a time (or it is a dedicated listener/lock
/// connection owned by one task), and every blocking call runs on the thread pool on behalf of
/// that owner, awaited before the next call. The only call made from elsewhere is `requestCancel`,
/// which uses libpq's thread-safe `PQcancel` object. `close()` is called once, after the last use.
final class PGConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    private let noticeBox: Unmanaged<NoticeBox>
    /// Created once at connect time, so `requestCancel` never touches `handle` from another thread.
    private let cancelHandle: OpaquePointer?
    /// Set once a statement found the socket broken; the pool discards such connections.
    private(set) var isBroken = false
    /// Server-side prepared statements of this session, by SQL text. The Store's SQL is a fixed
    /// set of constant strings, so this stays small; the cap only guards against misuse.
    private var preparedStatements: [String: String] = [:]
    private static let preparedStatementLimit = 256
    let backendPID: Int32

    private final class NoticeBox {
        let logger: Logger
        init(logger: Logger) { self.logger = logger }
    }

    private init(handle: OpaquePointer, logger: Logger) {
        self.handle = handle
        self.backendPID = PQbackendPID(handle)
        self.cancelHandle = PQgetCancel(handle)
        self.noticeBox = Unmanaged.passRetained(NoticeBox(logger: logger))
        // Server NOTICE/WARNING messages would otherwise go to stderr; route them to swift-log.
        PQsetNoticeReceiver(
            handle,
            { context, result in
                guard let context, let result else { return }
                let box = Unmanaged<NoticeBox>.fromOpaque(context).takeUnretainedValue()
                let severity =
                    PQresultErrorField(result, Int32(UInt8(ascii: "V"))).map { String(cString: $0) } ?? "NOTICE"
                let message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) } ?? ""
                let level: Logger.Level = (severity == "WARNING") ? .warning : .debug
                box.logger.log(
                    level: level, "postgres \(severity.lowercased()): \(message)",
                    metadata: ["db.severity": "\(severity)"])
            }, noticeBox.toOpaque())
    }

    deinit {
        if let handle { PQfinish(handle) }
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        noticeBox.release()
    }

    /// Opens a connection (blocking). Our defaults come before the user's conninfo so theirs win.
    static func connect(configuration: DatabaseConfiguration, logger: Logger) throws -> PGConnection {
        var keys: [String] = [
            "connect_timeout", "application_name", "keepalives", "keepalives_idle",
            "keepalives_interval", "keepalives_count", "client_encoding",
        ]
        var values: [String] = [
            String(configuration.connectTimeoutSeconds), configuration.applicationName, "1", "30", "10", "3", "UTF8",
        ]
        if let dsn = configuration.connectionString, !dsn.isEmpty {
            keys.append("dbname")
            values.append(dsn)
        }
        let cKeys = keys.map { strdup($0) }
        let cValues = values.map { strdup($0) }
        defer {
            cKeys.forEach { free($0) }
            cValues.forEach { free($0) }
        }
        var keyPointers: [UnsafePointer<CChar>?] = cKeys.map { UnsafePointer($0) } + [nil]
        var valuePointers: [UnsafePointer<CChar>?] = cValues.map { UnsafePointer($0) } + [nil]
        guard let raw = PQconnectdbParams(&keyPointers, &valuePointers, 1) else {
            throw PostgresError(kind: .connectFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(raw) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(raw)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(raw)
            throw PostgresError(kind: .connectFailed, message: message)
        }
        let connection = PGConnection(handle: raw, logger: logger)
        // Fixed session formats so text decoding of timestamps is unambiguous whatever the server's defaults.
        _ = try connection.execSimple(
            "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'")
        return connection
    }

    /// The connection is usable and outside any transaction.
    var isIdleAndHealthy: Bool {
        guard let handle, !isBroken else { return false }
        return PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// Non-blocking check of an idle pooled connection before it is handed out.
    ///
    /// A pooled connection never LISTENs, so while idle the server has nothing to say to it except
    /// the FATAL message it sends just before it closes the session (terminate, restart). Any
    /// readable byte therefore means the session is ending: discard it rather than race the EOF.
    func probeIdle() -> Bool {
        guard let handle, !isBroken else { return false }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, 0) != 0 || PQstatus(handle) != CONNECTION_OK {
            isBroken = true
            return false
        }
        return true
    }

    /// Runs one parameterised statement (blocking) with text-format parameters and results.
    ///
    /// The statement is prepared once per session and executed by name afterwards, which saves
    /// the server a parse and plan on every call of the hot queue statements.
    func exec(_ sql: String, _ parameters: [String?]) throws -> QueryResult {
        guard let handle else { throw PostgresError(kind: .connectionLost, message: "connection is closed") }
        var statement = preparedStatements[sql]
        if statement == nil, preparedStatements.count < Self.preparedStatementLimit {
            let name = "orch_\(preparedStatements.count)"
            _ = try consume(PQprepare(handle, name, sql, Int32(parameters.count), nil))
            preparedStatements[sql] = name
            statement = name
        }
        let cValues = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cValues.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = cValues.map { $0.map { UnsafePointer($0) } }
        let result = pointers.withUnsafeBufferPointer { buffer in
            if let statement {
                return PQexecPrepared(handle, statement, Int32(parameters.count), buffer.baseAddress, nil, nil, 0)
            }
            return PQexecParams(handle, sql, Int32(parameters.count), nil, buffer.baseAddress, nil, nil, 0)
        }
        return try consume(result)
    }

    /// Runs several parameterised statements in one round trip (libpq's pipeline mode, one sync at
    /// the end) and returns one result per statement. Each is prepared once per session, as in
    /// `exec`. On the first failing statement the server skips the rest up to the sync; that
    /// statement's error is thrown once every result has been read, so the session stays usable.
    func execPipeline(_ statements: [(sql: String, parameters: [String?])]) throws -> [QueryResult] {
        guard let handle else { throw PostgresError(kind: .connectionLost, message: "connection is closed") }
        guard PQenterPipelineMode(handle) == 1 else { throw connectionError() }
        defer { _ = PQexitPipelineMode(handle) }
        // What each result read back belongs to: a statement's prepare, or the statement itself.
        var expected: [(index: Int, isPrepare: Bool)] = []
        for (index, statement) in statements.enumerated() {
            var name = preparedStatements[statement.sql]
            if name == nil, preparedStatements.count < Self.preparedStatementLimit {
                let newName = "orch_\(preparedStatements.count)"
                guard PQsendPrepare(handle, newName, statement.sql, Int32(statement.parameters.count), nil) == 1 else {
                    throw connectionError()
                }
                expected.append((index, true))
                preparedStatements[statement.sql] = newName
                name = newName
            }
            let cValues = statement.parameters.map { $0.map { strdup($0) } ?? nil }
            defer { cValues.forEach { free($0) } }
            let pointers: [UnsafePointer<CChar>?] = cValues.map { $0.map { UnsafePointer($0) } }
            let sent = pointers.withUnsafeBufferPointer { buffer in
                if let name {
                    return PQsendQueryPrepared(
                        handle, name, Int32(pointers.count), buffer.baseAddress, nil, nil, 0)
                }
                return PQsendQueryParams(
                    handle, statement.sql, Int32(pointers.count), nil, buffer.baseAddress, nil, nil, 0)
            }
            guard sent == 1 else { throw connectionError() }
            expected.append((index, false))
        }
        guard PQpipelineSync(handle) == 1 else { throw connectionError() }
        var results: [QueryResult] = []
        var firstError: (any Error)?
        for owner in expected {
            // Each command's results end with a NULL from PQgetResult.
            guard let result = PQgetResult(handle) else { throw connectionError() }
            while let extra = PQgetResult(handle) { PQclear(extra) }
            if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                PQclear(result)
                // A prepare the server skipped never happened: prepare it again next time.
                if owner.isPrepare { preparedStatements[statements[owner.index].sql] = nil }
                continue
            }
            do {
                let value = try consume(result)
                if !owner.isPrepare { results.append(value) }
            } catch {
                if owner.isPrepare { preparedStatements[statements[owner.index].sql] = nil }
                firstError = firstError ?? error
            }
        }
        // The sync's own result closes the pipeline.
        guard let sync = PQgetResult(handle) else { throw connectionError() }
        let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
        PQclear(sync)
        guard synced else { throw connectionError() }
        if let firstError { throw firstError }
        return results
    }

    /// Runs a script of one or more statements with the simple query protocol (no parameters).
    /// Only for trusted text: migration files and fixed statements, never input.
    func execSimple(_ sql: String) throws -> QueryResult {
        guard let handle else { throw PostgresError(kind: .connectionLost, message: "connection is closed") }
        return try consume(PQexec(handle, sql))
    }

    private func consume(_ result: OpaquePointer?) throws -> QueryResult {
        guard let result else {
            throw connectionError()
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return QueryResult(columns: [], rows: [], affectedRows: Self.affectedRows(result))
        case PGRES_TUPLES_OK:
            return Self.copyRows(result)
        default:
            func field(_ code: Character) -> String? {
                PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
            }
            let sqlState = field("C")
            let message = field("M") ?? String(cString: PQresultErrorMessage(result))
            if let handle, PQstatus(handle) != CONNECTION_OK {
                isBroken = true
                throw PostgresError(kind: .connectionLost, sqlState: sqlState, message: message)
            }
            var error = PostgresError(
                kind: .server, sqlState: sqlState, message: message, detail: field("D"), hint: field("H"))
            if error.isConnectionLost {
                isBroken = true
                error.kind = .connectionLost
            }
            if sqlState == "0A000", message.contains("cached plan") {
                // A migration changed a table under a prepared statement: retire this session.
                isBroken = true
            }
            throw error
        }
    }

    private func connectionError() -> PostgresError {
        isBroken = true
        let message = handle.map { String(cString: PQerrorMessage($0)) } ?? "connection is closed"
        return PostgresError(kind: .connectionLost, message: message.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    private static func copyRows(_ result: OpaquePointer) -> QueryResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [String] = []
        columns.reserveCapacity(columnCount)
        for c in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(c))))
        }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var row: [String?] = []
            row.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    row.append(nil)
                } else {
                    row.append(String(cString: PQgetvalue(result, Int32(r), Int32(c))))
                }
            }
            rows.append(row)
        }
        return QueryResult(columns: columns, rows: rows, affectedRows: rowCount)
    }

    /// Waits up to `timeoutMilliseconds` for the socket to become readable, then returns every
    /// notification received (blocking; used only by the dedicated listener connection).
    func waitForNotifications(timeoutMilliseconds: Int32) throws -> [(channel: String, payload: String)] {
        guard let handle else { throw PostgresError(kind: .connectionLost, message: "connection is closed") }
        var notes = drainNotifications(handle)
        if !notes.isEmpty { return notes }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, timeoutMilliseconds)
        if ready < 0 && errno != EINTR {
            throw PostgresError(kind: .connectionLost, message: "poll failed: errno \(errno)")
        }
        if ready > 0 {
            if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK {
                throw connectionError()
            }
            notes = drainNotifications(handle)
        }
        return notes
    }

    private func drainNotifications(_ handle: OpaquePointer) -> [(channel: String, payload: String)] {
        var notes: [(channel: String, payload: String)] = []
        while let note = PQnotifies(handle) {
            notes.append((String(cString: note.pointee.relname), String(cString: note.pointee.extra)))
            PQfreemem(note)
        }
        return notes
    }

    /// Asks the server to cancel the statement in progress. Safe from any thread (libpq's `PQcancel`).
    func requestCancel() {
        guard let cancelHandle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
    }

    /// Closes the socket. The owner calls this once, after its last use.
    func close() {
        if let handle {
            PQfinish(handle)
            self.handle = nil
        }
    }
}
