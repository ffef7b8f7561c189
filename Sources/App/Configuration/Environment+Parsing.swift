import Foundation

/// Typed reads of environment variables, each failing with the variable's name.
struct EnvironmentReader {
    let values: [String: String]

    func string(_ key: String) -> String? {
        guard let value = values[key]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    func integer(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = string(key) else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                key: key, problem: "expected an integer in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return value
    }

    /// A decimal number in `range`, such as a percentage.
    func number(_ key: String, default fallback: Double, range: ClosedRange<Double>) throws -> Double {
        guard let text = string(key) else { return fallback }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            throw ConfigurationError(
                key: key, problem: "expected a number in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return value
    }

    /// A command's argv: a JSON list of strings (`["docker", "builder", "prune", "-af"]`, for
    /// arguments with spaces) or words separated by spaces. Never run through a shell.
    func argv(_ key: String) throws -> [String]? {
        guard let text = string(key) else { return nil }
        if text.hasPrefix("[") {
            guard let list = try? JSONDecoder().decode([String].self, from: Data(text.utf8)), !list.isEmpty,
                !list[0].isEmpty
            else {
                throw ConfigurationError(
                    key: key,
                    problem:
                        "expected a non-empty JSON list of strings such as [\"docker\", \"builder\", \"prune\", \"-af\"]"
                )
            }
            return list
        }
        return text.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// A comma-separated list, entries trimmed, empty ones dropped; nil when unset.
    func list(_ key: String) -> [String]? {
        string(key).map {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    func flag(_ key: String, default fallback: Bool) throws -> Bool {
        guard let text = string(key)?.lowercased() else { return fallback }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default:
            throw ConfigurationError(key: key, problem: "expected 1/0, true/false, yes/no or on/off, got '\(text)'")
        }
    }

    /// Variables that only make sense together: all their values, nil when none is set, an error
    /// naming the first missing one when only some are.
    func group(_ keys: [String]) throws -> [String]? {
        let values = keys.map { string($0) }
        if values.allSatisfy({ $0 == nil }) { return nil }
        if let missing = zip(keys, values).first(where: { $0.1 == nil })?.0 {
            throw ConfigurationError(
                key: missing,
                problem: "must be set together with \(keys.filter { $0 != missing }.joined(separator: " and "))")
        }
        return values.map { $0! }
    }

    /// An http(s) base URL such as `https://plane.example.com`.
    func httpURL(_ key: String, _ text: String) throws -> URL {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil
        else {
            throw ConfigurationError(
                key: key, problem: "expected an http(s) base URL such as https://host.example.com, got '\(text)'")
        }
        return url
    }

    /// A duration: a number of seconds (`5`, `0.5`) or with a unit (`250ms`, `5s`, `2m`, `1h`).
    func duration(_ key: String, default fallback: Duration) throws -> Duration {
        guard let text = string(key) else { return fallback }
        guard let value = Self.parseDuration(text), value > .zero else {
            throw ConfigurationError(
                key: key, problem: "expected a positive duration such as 5, 250ms, 5s, 2m or 1h, got '\(text)'")
        }
        return value
    }

    static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number.isFinite, number >= 0 else { return nil }
            return .milliseconds(Int64(number * scale * 1000))
        }
        guard let number = Double(text), number.isFinite, number >= 0 else { return nil }
        return .milliseconds(Int64(number * 1000))
    }
}
