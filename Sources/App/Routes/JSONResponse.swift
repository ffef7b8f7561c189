import Foundation
import Hummingbird

/// A JSON response with an explicit status (never a bodiless error).
func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONEncoder().encode(value)) ?? Data(#"{"ok":false,"error":"response encoding failed"}"#.utf8)
    return Response(
        status: status,
        headers: [.contentType: "application/json; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}
