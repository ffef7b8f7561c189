import Hummingbird
import Store
import Workers

/// `POST /fs-normalize/check?normalize=`: a fresh scan of this replica's work dir for entries not
/// owned by the service's user, with the command that gives them back; `normalize=1` first
/// chowns them, when `ORCH_FS_NORMALIZE_CHOWN` is on and the replica runs as root (otherwise the
/// answer says why it did not). The seed's body: `{"ok":true,"scan":…,"healing":…}`.
struct FileOwnershipRoutes: Sendable {
    /// This replica's check; nil when `ORCH_FS_NORMALIZE_ENABLED` is off.
    let check: FileOwnershipCheck?

    /// The answer.
    struct Checked: ResponseEncodable {
        let ok = true
        let enabled: Bool
        let host: String?
        let replica: String?
        let scan: OwnershipScan?
        let healing: String?
        /// What `normalize=1` did; absent without it.
        let normalize: FileOwnershipCheck.Normalization?

        enum CodingKeys: String, CodingKey {
            case ok, enabled, host, replica, scan, healing, normalize
        }

        /// `scan` and `healing` always present, null when off or clean, as the seed answered.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(ok, forKey: .ok)
            try container.encode(enabled, forKey: .enabled)
            try container.encodeIfPresent(host, forKey: .host)
            try container.encodeIfPresent(replica, forKey: .replica)
            try container.encode(scan, forKey: .scan)
            try container.encode(healing, forKey: .healing)
            try container.encodeIfPresent(normalize, forKey: .normalize)
        }
    }

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.post("/fs-normalize/check") { request, context in
            let normalize = try Self.flag(request.uri.queryParameters.get("normalize"), name: "normalize")
            guard let check else {
                return try context.responseEncoder.encode(
                    Checked(enabled: false, host: nil, replica: nil, scan: nil, healing: nil, normalize: nil),
                    from: request, context: context)
            }
            let report = await check.check(normalize: normalize)
            if let normalization = report.normalization {
                context.logger.notice(
                    "file ownership normalization asked by an operator",
                    metadata: [
                        "fs.workdir": "\(report.scan.workdir)", "fs.performed": "\(normalization.performed)",
                        "fs.changed": "\(normalization.changed)", "fs.failed": "\(normalization.failed)",
                        "fs.mismatched": "\(report.scan.mismatched)",
                    ])
            }
            return try context.responseEncoder.encode(
                Checked(
                    enabled: true, host: check.host, replica: check.replicaID, scan: report.scan,
                    healing: report.healing, normalize: report.normalization),
                from: request, context: context)
        }
        return routes
    }

    /// A 0/1/true/false query parameter; absent or empty is false, anything else a 400 naming it.
    static func flag(_ value: String?, name: String) throws -> Bool {
        guard let value, !value.isEmpty else { return false }
        switch value.lowercased() {
        case "1", "true": return true
        case "0", "false": return false
        default: throw APIError(.badRequest, "'\(name)' must be 0, 1, true or false, got '\(value.prefix(40))'")
        }
    }
}
