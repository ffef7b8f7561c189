import Logging

/// The process's log handler: a `StreamLogHandler` on standard error whose metadata is rendered when
/// a line is written, not whenever it is set.
///
/// `StreamLogHandler` renders its whole metadata to text on every change. Hummingbird sets a request
/// id on each request's logger, so that rendering ran for every webhook delivery (1.4% of a
/// replica's CPU at full load) for lines that are almost never written. The lines are the same.
struct LazyMetadataLogHandler: LogHandler {
    private var base: StreamLogHandler

    var metadata: Logger.Metadata = [:]

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    init(label: String) {
        self.base = StreamLogHandler.standardError(label: label)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var base = self.base
        base.metadata = metadata
        base.log(event: event)
    }
}
