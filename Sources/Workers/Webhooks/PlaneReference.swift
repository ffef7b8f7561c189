/// A Plane value that arrives either expanded (an object with a `name`, as labels and states do
/// in webhooks) or as a bare string; anything else reads as no name.
public struct PlaneReference: Decodable, Sendable, Equatable {
    /// The name, or the string itself.
    public let name: String?

    private enum CodingKeys: String, CodingKey {
        case name
    }

    /// Creates a reference.
    public init(name: String?) {
        self.name = name
    }

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: CodingKeys.self) {
            name = container.lenient(String.self, forKey: .name)
        } else {
            name = try? decoder.singleValueContainer().decode(String.self)
        }
    }
}
