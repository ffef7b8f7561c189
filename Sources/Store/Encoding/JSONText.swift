import Foundation

/// JSON text written by hand (a stored event is already JSON and is embedded as it is).
public enum JSONText {
    /// `text` as a JSON string literal, quotes included, e.g. `"say \"hi\""`.
    public static func quoted(_ text: String) -> String {
        // JSONSerialization writes arrays, not bare strings: the one element between the brackets.
        (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes]))
            .map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\"\""
    }
}
