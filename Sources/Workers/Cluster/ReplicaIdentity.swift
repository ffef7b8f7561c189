import Foundation
import Synchronization

/// Who this replica is in the `replicas` table. The id changes when the replica registers again
/// after the leader marked it stopped (a pause or partition past the heartbeat TTL): claims,
/// heartbeats, leadership and agent runs then go by the new id, and nothing works under the old.
public final class ReplicaIdentity: Sendable {
    /// `ORCH_REPLICA_NAME`: stable across restarts (startup recovery finds earlier lives by it).
    public let name: String
    public let host: String
    public let pid: Int
    public let role: String
    private let current: Mutex<String>

    public init(id: String, name: String, host: String, pid: Int, role: String) {
        self.name = name
        self.host = host
        self.pid = pid
        self.role = role
        self.current = Mutex(id)
    }

    /// The id registered now.
    public var id: String { current.withLock { $0 } }

    /// A new id for this process, made current (the caller registers it).
    func renew() -> String {
        let id = Self.makeID(name: name)
        current.withLock { $0 = id }
        return id
    }

    /// A fresh replica id: the name and eight random hex digits.
    public static func makeID(name: String) -> String {
        "\(name.prefix(40))-\(UUID().uuidString.prefix(8).lowercased())"
    }
}
