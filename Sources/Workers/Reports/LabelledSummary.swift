import Store

/// A report block's body made of the label that drives it (STOP, bug) and the scope, with a
/// summary's own keys beside them.
public struct LabelledSummary<Summary: Encodable & Sendable>: Encodable, Sendable {
    public let label: String
    public let summary: Summary

    public init(label: String, summary: Summary) {
        self.label = label
        self.summary = summary
    }

    enum CodingKeys: String, CodingKey {
        case label, scope
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(label, forKey: .label)
        try container.encode(QueueReportScope.all, forKey: .scope)
        try summary.encode(to: encoder)
    }
}
