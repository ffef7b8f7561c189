import Foundation

/// The configuration a replica would run with, as `path: value` lines, secrets masked: what
/// `orchestrator config check` prints. Walks the parsed configuration by reflection, so a setting
/// added later is listed without being added here.
enum EffectiveConfiguration {
    /// What a secret is printed as.
    static let mask = "****"

    /// One line per setting, in declaration order; every occurrence of a secret is masked.
    static func lines(_ configuration: AppConfiguration) -> [String] {
        var lines: [String] = []
        flatten(configuration, path: "", into: &lines)
        let secrets = configuration.secrets.compactMap { $0 }.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
        return lines.map { line in secrets.reduce(line) { $0.replacingOccurrences(of: $1, with: mask) } }
    }

    private static func flatten(_ value: Any, path: String, into lines: inout [String]) {
        func child(_ label: String) -> String { path.isEmpty ? label : "\(path).\(label)" }
        // Values whose own fields are an implementation detail print as their description.
        switch value {
        case let value as Duration:
            lines.append("\(path): \(value)")
            return
        case let value as String:
            lines.append("\(path): \(value)")
            return
        case let value as URL:
            lines.append("\(path): \(value.absoluteString)")
            return
        default:
            break
        }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional:
            if let wrapped = mirror.children.first?.value {
                flatten(wrapped, path: path, into: &lines)
            } else {
                lines.append("\(path): (not set)")
            }
        case .struct, .class:
            guard !mirror.children.isEmpty else {
                lines.append("\(path): \(value)")
                return
            }
            for case (let label?, let inner) in mirror.children {
                flatten(inner, path: child(label.hasPrefix("_") ? String(label.dropFirst()) : label), into: &lines)
            }
        case .collection, .set:
            let items = mirror.children.map(\.value)
            if items.allSatisfy({ Mirror(reflecting: $0).children.isEmpty || $0 is String }) {
                lines.append("\(path): [\(items.map { "\($0)" }.joined(separator: ", "))]")
            } else {
                for (index, item) in items.enumerated() { flatten(item, path: "\(path)[\(index)]", into: &lines) }
            }
        case .dictionary:
            let pairs = mirror.children.map { pair -> (String, Any) in
                let parts = Array(Mirror(reflecting: pair.value).children)
                return ("\(parts[0].value)", parts[1].value)
            }
            if pairs.isEmpty { lines.append("\(path): {}") }
            for (key, inner) in pairs.sorted(by: { $0.0 < $1.0 }) { flatten(inner, path: child(key), into: &lines) }
        default:
            lines.append("\(path): \(value)")
        }
    }
}
