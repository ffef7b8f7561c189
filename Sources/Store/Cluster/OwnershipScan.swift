import Foundation

/// One bounded scan of a replica's work dir for entries not owned by the service's user: what
/// `POST /fs-normalize/check` answers as `scan`, and what `fs_ownership` keeps per host.
public struct OwnershipScan: Sendable, Equatable, Codable {
    /// An entry owned by someone else.
    public struct Sample: Sendable, Equatable, Codable {
        public let path: String
        public let uid: UInt32
        public let gid: UInt32

        public init(path: String, uid: UInt32, gid: UInt32) {
            self.path = path
            self.uid = uid
            self.gid = gid
        }
    }

    /// The scanned directory (`ORCH_WORKDIR`).
    public let workdir: String
    /// The owner expected: the service's effective uid, and its gid (which healing gives).
    public let uid: UInt32
    public let gid: UInt32
    /// Entries examined, the work dir itself included.
    public var scanned: Int
    /// Entries owned by neither the service nor an agent's configured user.
    public var mismatched: Int
    /// Entries owned by an agent's configured user: expected (a worktree or home handed to it).
    public var agentOwned: Int
    /// Directories that could not be opened, so their contents were not examined.
    public var unreadable: Int
    /// The scan stopped at its bound before the end of the tree.
    public var truncated: Bool
    public let maxEntries: Int
    /// The first few mismatched entries.
    public var samples: [Sample]
    public var scannedAt: Date
    public var durationMs: Int64
    /// Why the work dir could not be scanned at all.
    public var error: String?

    public init(
        workdir: String, uid: UInt32, gid: UInt32, scanned: Int = 0, mismatched: Int = 0, agentOwned: Int = 0,
        unreadable: Int = 0, truncated: Bool = false, maxEntries: Int, samples: [Sample] = [], scannedAt: Date,
        durationMs: Int64 = 0, error: String? = nil
    ) {
        self.workdir = workdir
        self.uid = uid
        self.gid = gid
        self.scanned = scanned
        self.mismatched = mismatched
        self.agentOwned = agentOwned
        self.unreadable = unreadable
        self.truncated = truncated
        self.maxEntries = maxEntries
        self.samples = samples
        self.scannedAt = scannedAt
        self.durationMs = durationMs
        self.error = error
    }

    /// Whether anything under the work dir needs its owner changed.
    public var needsHealing: Bool { mismatched > 0 }
}
