import COpenSSL
import Foundation

/// HMAC-SHA256 webhook signatures (lowercase hex) and body hashes, through the system OpenSSL.
enum WebhookSignature {
    /// The lowercase hex HMAC-SHA256 of `body` under `secret`.
    static func hmacSHA256Hex(secret: String, body: [UInt8]) -> String {
        hex(hmacSHA256(secret: secret, body: body))
    }

    /// Whether `signature` (hex, any case, surrounding spaces ignored) is the HMAC of `body`.
    /// The comparison is constant-time over the digest bytes.
    static func verify(signature: String, secret: String, body: [UInt8]) -> Bool {
        let expected = hexBytes(hmacSHA256(secret: secret, body: body))
        var given = Array(signature.utf8)
        if given.count == expected.count {
            // The usual header, exactly one digest long: nothing to trim, and lowering ASCII letters
            // is all `lowercased()` would do to it (no other character lowers to a hex digit), so
            // skip Foundation's Unicode trimming and case mapping (they cost over ten times the HMAC).
            for index in given.indices where given[index] >= UInt8(ascii: "A") && given[index] <= UInt8(ascii: "Z") {
                given[index] += UInt8(ascii: "a") - UInt8(ascii: "A")
            }
        } else {
            given = Array(signature.trimmingCharacters(in: .whitespaces).lowercased().utf8)
        }
        guard given.count == expected.count else { return false }
        return given.withUnsafeBytes { a in
            expected.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, expected.count) == 0 }
        }
    }

    /// The lowercase hex SHA-256 of `body`.
    static func sha256Hex(_ body: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        body.withUnsafeBytes { bytes in
            _ = EVP_Digest(bytes.baseAddress, bytes.count, &digest, &length, EVP_sha256(), nil)
        }
        return hex(digest.prefix(Int(length)))
    }

    private static func hmacSHA256(secret: String, body: [UInt8]) -> ArraySlice<UInt8> {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let key = Array(secret.utf8)
        key.withUnsafeBytes { keyBytes in
            body.withUnsafeBytes { bodyBytes in
                _ = HMAC(
                    EVP_sha256(), keyBytes.baseAddress, Int32(key.count),
                    bodyBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), body.count, &digest, &length)
            }
        }
        return digest.prefix(Int(length))
    }

    private static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: hexBytes(bytes), as: UTF8.self)
    }

    /// Lowercase hex digits of `bytes`, as UTF-8.
    private static func hexBytes(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(hexDigit(byte >> 4))
            out.append(hexDigit(byte & 0x0f))
        }
        return out
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
