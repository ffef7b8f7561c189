import Hummingbird

extension Request {
    /// A header by case-insensitive name (without naming HTTPTypes' field type).
    func header(named name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.canonicalName == wanted }?.value
    }
}
