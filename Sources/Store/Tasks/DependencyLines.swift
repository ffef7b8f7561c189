import Foundation

/// The work items a description says a task waits for: lines starting with `Depends on` or
/// `Blocked by` (any case, an optional colon), naming work items such as `ORCH-12`, separated by
/// commas, spaces or `and`. Anything else on those lines is ignored, and so is every other line.
public enum DependencyLines {
    public static func parse(_ description: String) -> [String] {
        var found: [String] = []
        for line in description.split(whereSeparator: \.isNewline) {
            let text = line.trimmingCharacters(in: .whitespaces).drop { "-*>#".contains($0) }
                .trimmingCharacters(in: .whitespaces)
            let lower = text.lowercased()
            guard let prefix = ["depends on", "blocked by"].first(where: { lower.hasPrefix($0) }) else { continue }
            for word in text.dropFirst(prefix.count).split(whereSeparator: {
                !($0.isLetter || $0.isNumber || $0 == "-")
            })
            where isWorkItem(word) && !found.contains(String(word)) {
                found.append(String(word))
            }
        }
        return found
    }

    /// `PROJECT-123`: capitals and digits starting with a capital, a dash, digits.
    static func isWorkItem(_ word: Substring) -> Bool {
        let parts = word.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let project = parts[0].first, project.isUppercase, project.isASCII else { return false }
        return parts[0].allSatisfy { ($0.isUppercase || $0.isNumber) && $0.isASCII }
            && !parts[1].isEmpty && parts[1].allSatisfy { $0.isNumber && $0.isASCII }
    }
}
