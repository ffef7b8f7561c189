import Foundation

/// Checks a webhook body's shape and names its event, before anything is stored.
enum WebhookPayload {
    /// Where the delivery came from.
    enum Source: String, Sendable, CaseIterable {
        case plane, gitea
    }

    /// A body that is not what the source sends; the message names the field.
    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// The event name to store, and a reason when the orchestrator does not act on it.
    struct Classification: Equatable {
        let event: String
        let ignoredReason: String?
    }

    /// Parses and validates; `headerEvent` is Gitea's `X-Gitea-Event`.
    static func classify(source: Source, headerEvent: String?, body: [UInt8]) throws -> Classification {
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw Invalid(description: "body must be a JSON object")
            }
            object = parsed
        } catch let error as Invalid {
            throw error
        } catch {
            throw Invalid(description: "body is not valid JSON")
        }
        switch source {
        case .plane: return try plane(object)
        case .gitea: return try gitea(object, event: headerEvent)
        }
    }

    private static func plane(_ object: [String: Any]) throws -> Classification {
        let event = try require(object, "event", as: String.self)
        let action = try require(object, "action", as: String.self)
        let name = "\(event).\(action)"
        switch event {
        case "issue":
            let data = try require(object, "data", as: [String: Any].self)
            _ = try require(data, "id", as: String.self, path: "data.id")
            if action != "deleted" {
                _ = try requireInteger(data, "sequence_id", path: "data.sequence_id")
                _ = try require(data, "project", as: String.self, path: "data.project")
                _ = try require(data, "name", as: String.self, path: "data.name")
            }
            return Classification(event: name, ignoredReason: nil)
        case "issue_comment":
            let data = try require(object, "data", as: [String: Any].self)
            _ = try require(data, "id", as: String.self, path: "data.id")
            _ = try require(data, "issue", as: String.self, path: "data.issue")
            _ = try require(data, "project", as: String.self, path: "data.project")
            return Classification(event: name, ignoredReason: nil)
        default:
            return Classification(event: name, ignoredReason: "Plane event '\(event)' is not handled")
        }
    }

    private static func gitea(_ object: [String: Any], event: String?) throws -> Classification {
        guard let event, !event.isEmpty else { throw Invalid(description: "missing X-Gitea-Event header") }
        switch event {
        case "pull_request":
            _ = try require(object, "action", as: String.self)
            _ = try requireInteger(object, "number", path: "number")
            let pull = try require(object, "pull_request", as: [String: Any].self)
            let head = try require(pull, "head", as: [String: Any].self, path: "pull_request.head")
            _ = try require(head, "sha", as: String.self, path: "pull_request.head.sha")
        case "status":
            _ = try require(object, "sha", as: String.self)
            _ = try require(object, "state", as: String.self)
            _ = try require(object, "context", as: String.self)
        case "push":
            _ = try require(object, "ref", as: String.self)
            _ = try require(object, "after", as: String.self)
        default:
            return Classification(event: event, ignoredReason: "Gitea event '\(event)' is not handled")
        }
        let repository = try require(object, "repository", as: [String: Any].self)
        _ = try require(repository, "full_name", as: String.self, path: "repository.full_name")
        return Classification(event: event, ignoredReason: nil)
    }

    private static func require<T>(_ object: [String: Any], _ key: String, as type: T.Type, path: String? = nil) throws -> T {
        guard let value = object[key], !(value is NSNull) else { throw Invalid(description: "missing '\(path ?? key)'") }
        guard let typed = value as? T, !(T.self == String.self && value is NSNumber) else {
            throw Invalid(description: "'\(path ?? key)' must be \(describe(T.self))")
        }
        return typed
    }

    private static func requireInteger(_ object: [String: Any], _ key: String, path: String) throws -> Int {
        guard let value = object[key], !(value is NSNull) else { throw Invalid(description: "missing '\(path)'") }
        // JSONSerialization gives NSNumber for numbers and booleans alike; accept whole numbers only.
        guard let number = value as? NSNumber, !isBoolean(number),
              let integer = Int(exactly: number.doubleValue), Double(integer) == number.doubleValue
        else { throw Invalid(description: "'\(path)' must be an integer") }
        return integer
    }

    /// JSON `true`/`false` arrive as NSNumbers of C type `c` (char).
    private static func isBoolean(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is [String: Any].Type: return "an object"
        default: return "\(type)"
        }
    }
}
