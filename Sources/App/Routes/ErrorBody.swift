import Hummingbird

/// The seed's error shape: `{"ok":false,"error":"…"}`.
struct ErrorBody: ResponseCodable {
    let ok: Bool
    let error: String

    init(_ error: String) {
        self.ok = false
        self.error = error
    }
}
