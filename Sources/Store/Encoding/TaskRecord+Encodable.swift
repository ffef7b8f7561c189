extension TaskRecord: Encodable {
    enum CodingKeys: String, CodingKey {
        case workItem, repo, title, stage, status, track, auto, labels, prNumber, headSHA, mergeSHA, headCIState,
            mergeCIState
        case createdAt, updatedAt
    }

    /// The task as the admin API shows it: the state's fields at the top level; the description
    /// and the visit counter stay out (long text, internal bookkeeping).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(workItem, forKey: .workItem)
        try container.encodeIfPresent(repo, forKey: .repo)
        try container.encode(title, forKey: .title)
        try container.encode(state.stage.rawValue, forKey: .stage)
        try container.encode(state.status.rawValue, forKey: .status)
        try container.encode(state.track.rawValue, forKey: .track)
        try container.encode(state.auto, forKey: .auto)
        try container.encode(labels, forKey: .labels)
        try container.encodeIfPresent(prNumber, forKey: .prNumber)
        try container.encodeIfPresent(headSHA, forKey: .headSHA)
        try container.encodeIfPresent(mergeSHA, forKey: .mergeSHA)
        try container.encodeIfPresent(headCIState, forKey: .headCIState)
        try container.encodeIfPresent(mergeCIState, forKey: .mergeCIState)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}
