/// A Gitea user as webhooks name them (`sender`, `comment.user`): who wrote a review or a comment.
public struct GiteaUser: Decodable, Sendable, Equatable {
    public let login: String?
    /// Empty or a placeholder when the user keeps it private.
    public let email: String?

    enum CodingKeys: String, CodingKey {
        case login, email
        // Older Gitea names the login `username`.
        case username
    }

    public init(login: String?, email: String?) {
        self.login = login
        self.email = email
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        login = container.lenient(String.self, forKey: .login) ?? container.lenient(String.self, forKey: .username)
        email = container.lenient(String.self, forKey: .email).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether an `allowed_actors` entry names this user: its email (case-insensitively) or its
    /// Gitea login.
    public func isNamed(in allowed: [String]) -> Bool {
        allowed.contains { entry in
            (email.map { $0.lowercased() == entry.lowercased() } ?? false) || login == entry
        }
    }

    /// How the user is named in an `ignored` reason and in the task's feedback.
    public var label: String {
        switch (login, email) {
        case (let login?, let email?): "\(login) (\(email))"
        case (let login?, nil): login
        case (nil, let email?): email
        case (nil, nil): "an unknown Gitea user"
        }
    }
}
