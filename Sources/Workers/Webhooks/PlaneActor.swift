/// Who did what a Plane webhook reports (`activity.actor`): the user an allow-list names.
public struct PlaneActor: Decodable, Sendable, Equatable {
    /// Plane's user id (a uuid).
    public let id: String?
    /// The user's email, when Plane sends it (issue events do; comment events may not).
    public let email: String?
    /// The display name, for logs and the task's history.
    public let displayName: String?

    enum CodingKeys: String, CodingKey {
        case id, email
        case displayName = "display_name"
    }

    public init(id: String?, email: String?, displayName: String?) {
        self.id = id
        self.email = email
        self.displayName = displayName
    }

    /// Whether an entry of `allowed` (Plane user ids or emails; emails compare case-insensitively)
    /// names this actor.
    public func isNamed(in allowed: [String]) -> Bool {
        allowed.contains { entry in
            (id.map { $0 == entry } ?? false) || (email.map { $0.lowercased() == entry.lowercased() } ?? false)
        }
    }

    /// How the actor is named in an `ignored` reason: the display name with the id or email.
    public var label: String {
        let key = email ?? id ?? "unknown user"
        return displayName.map { "\($0) (\(key))" } ?? key
    }
}

/// The `activity` object around a Plane webhook's data; only its actor is read.
struct PlaneActivity: Decodable {
    let actor: PlaneActor?
}
