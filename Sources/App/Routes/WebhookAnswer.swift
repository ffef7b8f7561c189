import Hummingbird
import NIOCore

/// The webhook routes' success answers, written out directly: they are answered thousands of times
/// a second, and a JSONEncoder per answer cost more than the rest of the answer together. Same JSON
/// as ``json(_:status:)`` gives: `{"ok":true,"id":…,"status":"accepted"|"ignored"}` and
/// `{"ok":true,"duplicate":true}`.
enum WebhookAnswer {
    /// 202: delivery `id` stored with `status`, which is one of the fixed words above (not escaped).
    static func stored(id: Int64, status: StaticString) -> Response {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(64)
        buffer.writeStaticString(#"{"ok":true,"id":"#)
        buffer.writeString(String(id))
        buffer.writeStaticString(#","status":""#)
        buffer.writeStaticString(status)
        buffer.writeStaticString(#""}"#)
        return answer(.accepted, buffer)
    }

    /// 200: the delivery was received before; nothing was written.
    static func duplicate() -> Response {
        answer(.ok, ByteBuffer(staticString: #"{"ok":true,"duplicate":true}"#))
    }

    private static func answer(_ status: HTTPResponse.Status, _ body: ByteBuffer) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: body))
    }
}
