extension MetricsStore.StageFigures: Encodable {
    enum CodingKeys: String, CodingKey {
        case stage, tasks, exits, secondsSpent, avgSeconds
    }

    /// A stage in `GET /metrics`: times to the millisecond, and the average visit (absent before
    /// any task left the stage).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(stage, forKey: .stage)
        try container.encode(tasks, forKey: .tasks)
        try container.encode(exits, forKey: .exits)
        try container.encode(secondsSpent.rounded(toPlaces: 3), forKey: .secondsSpent)
        if exits > 0 {
            try container.encode((secondsSpent / Double(exits)).rounded(toPlaces: 3), forKey: .avgSeconds)
        }
    }
}
