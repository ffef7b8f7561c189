import Foundation
import Synchronization

/// Replaces every configured secret value (admin token, webhook secrets, API keys, the database
/// password) with `[REDACTED]` in text headed for task events, lessons, Telegram and Plane, and
/// caps command output placed there.
///
/// One process-wide instance (`shared`), set once at startup from the configuration: the texts
/// to redact are written deep inside stores and job handlers (a gate's message, a lesson, a
/// notification) that have no path to the configuration, and threading a redactor through each
/// would reach code other changes own. It sits behind a `Mutex` so that setting it at startup and
/// reading it from any task is race-free; until it is set it redacts nothing.
public final class SecretRedactor: Sendable {
    /// What a secret becomes.
    public static let replacement = "[REDACTED]"
    /// Shorter values are not redacted: replacing every "1234" would shred ordinary text, and a
    /// secret that short protects nothing anyway.
    public static let minimumLength = 6
    /// The most command output (or other free text) an event, lesson or message keeps.
    public static let maxTextLength = 4000

    /// The process-wide redactor.
    public static let shared = SecretRedactor()

    private let secrets = Mutex<[String]>([])

    public init() {}

    /// Sets the secrets (replacing earlier ones); nil, empty and short values are skipped. Longer
    /// ones are matched first, so a secret containing another is replaced whole.
    public func configure(secrets values: [String?]) {
        let kept = Set(values.compactMap { $0 }.filter { $0.count >= Self.minimumLength })
        secrets.withLock { $0 = kept.sorted { $0.count > $1.count } }
    }

    /// The number of secrets it redacts (for a startup log line; never the values).
    public var count: Int { secrets.withLock { $0.count } }

    /// `text` with every secret replaced.
    public func redact(_ text: String) -> String {
        let values = secrets.withLock { $0 }
        var text = text
        for value in values where text.contains(value) {
            text = text.replacingOccurrences(of: value, with: Self.replacement)
        }
        return text
    }

    /// `redact` for an optional text.
    public func redact(_ text: String?) -> String? { text.map { redact($0) } }

    /// Redacted and capped at `limit` characters, keeping the start and the end (where a failing
    /// command says what went wrong) around "… N characters omitted …".
    public func redact(_ text: String, limit: Int) -> String {
        let text = redact(text)
        guard text.count > limit else { return text }
        let keep = max(0, limit - 40) / 2
        return "\(text.prefix(keep))\n… \(text.count - 2 * keep) characters omitted …\n\(text.suffix(keep))"
    }

    /// The password of a libpq connection string (`postgresql://user:password@…` or
    /// `password=…` in conninfo), for `configure`: as written, and percent-decoded for a URI.
    public static func databasePasswords(_ url: String?) -> [String] {
        guard let url, let password = password(url) else { return [] }
        return [password, password.removingPercentEncodingIfPossible]
    }

    private static func password(_ url: String) -> String? {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            let rest = url.drop(while: { $0 != "/" }).dropFirst(2)
            guard let at = rest.lastIndex(of: "@") else { return nil }
            let credentials = rest[..<at]
            guard let colon = credentials.firstIndex(of: ":") else { return nil }
            return String(credentials[credentials.index(after: colon)...])
        }
        for part in url.split(separator: " ") where part.hasPrefix("password=") {
            var value = String(part.dropFirst("password=".count))
            if value.hasPrefix("'"), value.hasSuffix("'"), value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            return value
        }
        return nil
    }
}

extension String {
    /// Percent-decoded when it decodes (URI userinfo), else as is.
    fileprivate var removingPercentEncodingIfPossible: String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
