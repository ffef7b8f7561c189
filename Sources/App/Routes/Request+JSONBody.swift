import Foundation
import Hummingbird

extension Request {
    /// The body decoded as JSON, at most `limit` bytes; nil when it is too large or not `T`.
    /// Admin bodies are small: a cap keeps a wrong client from making the replica buffer much.
    func decodeJSONBody<T: Decodable>(_ type: T.Type, limit: Int = 64 * 1024) async -> T? {
        var request = self
        guard let buffer = try? await request.collectBody(upTo: limit) else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(buffer: buffer))
    }
}
