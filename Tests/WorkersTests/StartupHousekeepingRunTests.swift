import Foundation
import Logging
import Synchronization
import XCTest

@testable import Workers

/// The startup housekeeping's runner: one log line per step, with what it did, skipped or failed;
/// a required step's failure stops the start, an optional one's does not.
final class StartupHousekeepingRunTests: XCTestCase {
    func testOneLinePerStepAndOnlyARequiredFailureStopsTheStart() async throws {
        struct Broken: Error {}
        let lines = Lines()
        var logger = Logger(label: "housekeeping") { _ in LineCollector(lines: lines) }
        logger.logLevel = .info
        let results = try await StartupHousekeeping.run(
            [
                .init("first") { ["things.done": "2"] },
                .init("optional") { throw Broken() },
                .skipped("later", reason: "not built yet"),
            ],
            logger: logger)
        XCTAssertEqual(results["first"], ["things.done": "2"])
        XCTAssertEqual(
            lines.all,
            [
                "startup housekeeping: first things.done=2",
                "startup housekeeping: optional housekeeping.failed=Broken() housekeeping.required=false",
                "startup housekeeping: later housekeeping.skipped=not built yet",
            ])

        lines.clear()
        do {
            try await StartupHousekeeping.run(
                [.init("required", required: true) { throw Broken() }, .init("never") { [:] }], logger: logger)
            XCTFail("a required step's failure stops the start")
        } catch is Broken {}
        XCTAssertEqual(lines.all.count, 1, "the steps after it do not run")
    }
}

/// Log lines, as `LineCollector` writes them.
private final class Lines: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    func clear() { lines.withLock { $0 = [] } }
}

/// Collects each log line as `message key=value …` (keys sorted).
private struct LineCollector: LogHandler {
    let lines: Lines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let line = ([event.message.description] + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
            .joined(separator: " ")
        lines.append(line)
    }
}
