import Foundation

/// The work items a description says a task waits for: `Depends on` or `Blocked by` (any case, an
/// optional colon) followed by work items such as `ORCH-12`, separated by commas, spaces, `and` or
/// `&`. The list ends at the first word that is none of these. The phrase may open a line or sit in
/// a sentence: Plane's plain-text description joins paragraphs with spaces.
public enum DependencyLines {
    public static func parse(_ description: String) -> [String] {
        let words = description.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        var found: [String] = []
        var index = 0
        while index + 1 < words.count {
            let phrase = "\(words[index]) \(words[index + 1])".lowercased()
            index += 1
            guard
                phrase.hasSuffix("depends on") || phrase.hasSuffix("depends on:") || phrase.hasSuffix("blocked by")
                    || phrase.hasSuffix("blocked by:"), Self.isPhraseStart(words[index - 1])
            else { continue }
            index += 1
            while index < words.count {
                let word = words[index].trimmingCharacters(in: CharacterSet(charactersIn: ",;.:()"))
                if ["and", "&", ""].contains(word.lowercased()) {
                    index += 1
                    continue
                }
                guard isWorkItem(Substring(word)) else { break }
                if !found.contains(word) { found.append(word) }
                // A sentence ends the list: "Depends on ORCH-1. Then …".
                if words[index].hasSuffix(".") || words[index].hasSuffix(";") {
                    index += 1
                    break
                }
                index += 1
            }
        }
        return found
    }

    /// The first word of the phrase, with any bullet or quote marks before it.
    private static func isPhraseStart(_ word: String) -> Bool {
        let bare = word.drop { "-*>#(\"'".contains($0) }.lowercased()
        return bare == "depends" || bare == "blocked"
    }

    /// `PROJECT-123`: capitals and digits starting with a capital, a dash, digits.
    static func isWorkItem(_ word: Substring) -> Bool {
        let parts = word.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let project = parts[0].first, project.isUppercase, project.isASCII else { return false }
        return parts[0].allSatisfy { ($0.isUppercase || $0.isNumber) && $0.isASCII }
            && !parts[1].isEmpty && parts[1].allSatisfy { $0.isNumber && $0.isASCII }
    }
}
