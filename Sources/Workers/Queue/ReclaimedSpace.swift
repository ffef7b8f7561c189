import Foundation

/// Reads how much a prune command freed from its output — docker's `Total reclaimed space:
/// 1.2GB`, `docker builder prune`'s `Total:\t512MB` — so `/queue` can show what each run was
/// worth. Pure; nil when the output does not say.
public enum ReclaimedSpace {
    /// Bytes reclaimed, summed over every line that reports it; nil when no line does.
    public static func parse(_ output: String) -> Int64? {
        var total: Int64?
        for line in output.split(whereSeparator: \.isNewline) {
            let text = line.trimmingCharacters(in: .whitespaces)
            let lower = text.lowercased()
            let value: Substring
            if let range = lower.range(of: "reclaimed space:") {
                value = text[range.upperBound...]
            } else if lower.hasPrefix("total:") {
                value = text.dropFirst("total:".count)
            } else {
                continue
            }
            guard let bytes = size(value.trimmingCharacters(in: .whitespaces)) else { continue }
            total = (total ?? 0) + bytes
        }
        return total
    }

    /// A size such as `1.2GB`, `512 MiB`, `0B` or `2.5kB` in bytes (docker prints decimal units;
    /// the `i` forms are binary).
    static func size(_ text: String) -> Int64? {
        let digits = text.prefix { $0.isNumber || $0 == "." }
        guard let number = Double(digits), number.isFinite, number >= 0 else { return nil }
        let unit = text.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let scales: [String: Double] = [
            "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
            "kib": 1024, "mib": 1_048_576, "gib": 1_073_741_824, "tib": 1_099_511_627_776,
        ]
        guard let scale = scales[unit.split(separator: " ").first.map(String.init) ?? ""] else { return nil }
        let bytes = number * scale
        guard bytes < Double(Int64.max) else { return nil }
        return Int64(bytes.rounded())
    }
}
