/// What a block's figures cover. Every block reads the shared database, so its figures are the
/// whole cluster's (`all`), not the answering replica's.
enum QueueReportScope {
    static let all = "all"
}
