import Foundation
import Store
import TestSupport
import XCTest

@testable import Workers

/// Command output is kept as a bounded head and tail, in memory and on disk (issue #9, item 8).
final class BoundedOutputTests: XCTestCase {
    private func appended(_ output: inout BoundedOutput, _ text: String) {
        Array(text.utf8).withUnsafeBytes { _ = output.append($0) }
    }

    func testShortOutputIsKeptWholeAndLongOutputKeepsHeadAndTailAroundAMarker() {
        var short = BoundedOutput(headLimit: 4, tailLimit: 4)
        appended(&short, "abcdefgh")
        XCTAssertEqual(short.text, "abcdefgh")
        XCTAssertEqual(short.omitted, 0)

        var long = BoundedOutput(headLimit: 4, tailLimit: 4)
        for piece in ["ab", "cdef", "ghij", "k", "lmnopqrstu", "vw", "xyz"] { appended(&long, piece) }
        XCTAssertEqual(long.text, "abcd\n… 18 bytes omitted …\nwxyz")
        XCTAssertEqual(long.total, 26)

        // Byte by byte, the ring wraps many times and still keeps the newest bytes in order.
        var bytewise = BoundedOutput(headLimit: 3, tailLimit: 5)
        for character in "0123456789abcdefghij" { appended(&bytewise, String(character)) }
        XCTAssertEqual(bytewise.text, "012\n… 12 bytes omitted …\nfghij")
    }

    /// A command printing 1 GiB finishes with bounded memory and bounded output. Before, the
    /// whole output went to a temporary file and was read back into one String (1 GiB and more).
    func testACommandPrintingAGigabyteCostsBoundedMemory() async throws {
        let before = try Self.memory()
        let clock = ContinuousClock()
        let started = clock.now
        let result = try await CommandRunner().run(
            ["sh", "-c", "head -c 1073741824 /dev/zero | tr '\\0' 'a'; echo; echo the end"], in: "/",
            timeout: .seconds(600))
        let after = try Self.memory()
        print("1 GiB of output: \(clock.now - started), VmHWM \(before.peak >> 20) → \(after.peak >> 20) MiB")
        XCTAssertEqual(result.exitCode, 0)
        let cap = BoundedOutput.commandHeadBytes + BoundedOutput.commandTailBytes + 100
        XCTAssertLessThanOrEqual(result.output.utf8.count, cap, "output capped")
        XCTAssertTrue(result.output.hasPrefix("aaaa"))
        XCTAssertTrue(result.output.hasSuffix("a\nthe end\n"), String(result.output.suffix(40)))
        XCTAssertTrue(result.output.contains("bytes omitted"))
        let (peakGrowth, growth) = (after.peak - before.peak, after.current - before.current)
        XCTAssertLessThan(peakGrowth, 64 << 20, "peak RSS grew by \(peakGrowth >> 20) MiB")
        XCTAssertLessThan(growth, 64 << 20, "RSS grew by \(growth >> 20) MiB")
    }

    /// The output is read from a pipe now: a process that left the command's group and keeps the
    /// pipe open does not hold the run past a short drain once the command exited.
    func testAnEscapedProcessHoldingTheOutputDoesNotHoldTheRun() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let result = try await CommandRunner().run(["sh", "-c", "setsid sleep 30 & echo started"], in: "/")
        XCTAssertEqual(result.output, "started\n")
        XCTAssertLessThan(clock.now - started, .seconds(10), "returned after the drain, not after the sleep")
    }

    /// This process's peak and current resident set in bytes (`/proc/self/status`).
    private static func memory() throws -> (peak: Int, current: Int) {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        func kilobytes(_ key: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (kilobytes("VmHWM"), kilobytes("VmRSS"))
    }
}
