import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The user and groups a child runs as (`agents.<role>.user`/`group`), resolved from names once
/// at configuration time. Only a root orchestrator can start children as another user.
public struct ChildIdentity: Sendable, Equatable {
    public var userName: String
    public var userID: uid_t
    public var groupID: gid_t
    /// The user's groups from the group database, so the child does not keep root's.
    public var supplementaryGroups: [gid_t]

    public init(userName: String, userID: uid_t, groupID: gid_t, supplementaryGroups: [gid_t]) {
        self.userName = userName
        self.userID = userID
        self.groupID = groupID
        self.supplementaryGroups = supplementaryGroups
    }

    /// Why a user or group name does not resolve.
    public struct LookupFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Resolves `user` (a name or a numeric id) and, when given, `group` (else the user's primary
    /// group) with getpwnam/getgrnam.
    public static func resolve(user: String, group: String?) throws -> ChildIdentity {
        guard let entry = getpwnam(user) ?? UInt32(user).flatMap({ getpwuid($0) }) else {
            throw LookupFailure(description: "no such user '\(user)'")
        }
        let name = String(cString: entry.pointee.pw_name)
        let userID = entry.pointee.pw_uid
        var groupID = entry.pointee.pw_gid
        if let group {
            guard let groupEntry = getgrnam(group) ?? UInt32(group).flatMap({ getgrgid($0) }) else {
                throw LookupFailure(description: "no such group '\(group)'")
            }
            groupID = groupEntry.pointee.gr_gid
        }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, groupID, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, groupID, &groups, &count)
        }
        let supplementary = Array(groups.prefix(Int(max(0, count))))
        return ChildIdentity(
            userName: name, userID: userID, groupID: groupID,
            supplementaryGroups: supplementary.isEmpty ? [groupID] : supplementary)
    }
}
