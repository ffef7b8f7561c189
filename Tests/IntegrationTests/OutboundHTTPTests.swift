import Foundation
import Hummingbird
import NIOCore
import TestSupport
import XCTest

@testable import Workers

/// Outbound calls keep at most `OutboundHTTP.maximumResponseBytes` of a response: a server that
/// answers megabytes cannot make a replica hold them, and errors quote only a short prefix.
final class OutboundHTTPTests: XCTestCase {
    static let huge = 5 << 20

    private func hugeAnswers() -> Router<BasicRequestContext> {
        let router = Router()
        let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: Self.huge)
        router.get("/huge") { _, _ in Response(status: .ok, body: ResponseBody(byteBuffer: body)) }
        router.post("/botTOKEN/sendMessage") { _, _ in
            Response(status: .badRequest, body: ResponseBody(byteBuffer: body))
        }
        router.get("/small") { _, _ in
            Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "fine")))
        }
        return router
    }

    func testAFiveMebibyteBodyIsCutAtTheCap() async throws {
        let (huge, small) = try await StandInServer.with(hugeAnswers()) { api in
            let huge = try await OutboundHTTP.send("GET", api.appendingPathComponent("huge"))
            // The connection the cut dropped does not spoil the next call.
            let small = try await OutboundHTTP.send("GET", api.appendingPathComponent("small"))
            return (huge, small)
        }
        XCTAssertEqual(OutboundHTTP.maximumResponseBytes, 1 << 20)
        XCTAssertEqual(huge.status, 200)
        XCTAssertEqual(huge.body.count, OutboundHTTP.maximumResponseBytes)
        XCTAssertEqual(small.status, 200)
        XCTAssertEqual(String(decoding: small.body, as: UTF8.self), "fine")
    }

    func testAnErrorQuotesOnlyAShortPrefixOfAHugeBody() async throws {
        let message = try await StandInServer.with(hugeAnswers()) { api in
            let settings = TelegramSettings(apiURL: api, token: "TOKEN", chatID: "42")
            do {
                try await Notifier.sendTelegram(["hello"], settings: settings, job: nil, jobs: nil)
                return ""
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(message.hasPrefix("Telegram sendMessage answered 400: xxx"), String(message.prefix(100)))
        XCTAssertLessThan(message.count, 400)
    }
}
