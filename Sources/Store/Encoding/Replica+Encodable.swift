extension Replica: Encodable {
    enum CodingKeys: String, CodingKey {
        case id, name, host, pid, role, leader, heartbeatAgeSeconds, startedAt
    }

    /// A live replica in `/queue`: whether it leads, and its heartbeat's age to the millisecond.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(host, forKey: .host)
        try container.encode(pid, forKey: .pid)
        try container.encode(role, forKey: .role)
        try container.encode(leaderSince != nil, forKey: .leader)
        try container.encode(heartbeatAgeSeconds.rounded(toPlaces: 3), forKey: .heartbeatAgeSeconds)
        try container.encode(startedAt, forKey: .startedAt)
    }
}
