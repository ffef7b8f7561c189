import COpenSSL
import Foundation

/// HMAC-SHA256 webhook signatures (lowercase hex) and body hashes, through the system OpenSSL.
enum WebhookSignature {
    /// The lowercase hex HMAC-SHA256 of `body` under `secret`.
    static func hmacSHA256Hex(secret: String, body: [UInt8]) -> String {
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
        return hex(digest.prefix(Int(length)))
    }

    /// Whether `signature` (hex, any case, surrounding spaces ignored) is the HMAC of `body`.
    /// The comparison is constant-time over the digest bytes.
    static func verify(signature: String, secret: String, body: [UInt8]) -> Bool {
        let expected = Array(hmacSHA256Hex(secret: secret, body: body).utf8)
        let given = Array(signature.trimmingCharacters(in: .whitespaces).lowercased().utf8)
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

    private static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
