import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Workspace {
    /// A task's worktree could not be made because files of the work dir belong to another user
    /// (git's "detected dubious ownership", or EACCES/EPERM under the work dir). Its message is
    /// the operator's next step: the healing command.
    public struct OwnershipFailure: Error, CustomStringConvertible {
        public let workItem: String
        public let workdir: String
        /// What failed, in git's or the system's words.
        public let evidence: String
        /// The command that gives the work dir back to the service's user.
        public let healing: String

        init(workItem: String, workdir: String, evidence: String) {
            self.workItem = workItem
            let absolute = URL(fileURLWithPath: workdir).standardizedFileURL.path
            self.workdir = absolute
            self.evidence = String(evidence.prefix(500))
            healing = FileOwnership.healingCommand(
                workdir: absolute, uid: geteuid(), gid: getegid(), privileged: geteuid() == 0)
        }

        public var description: String {
            "cannot prepare the worktree of \(workItem): files under \(workdir) are not owned by the orchestrator's "
                + "user (uid \(geteuid())): \(evidence). Give them back with: \(healing) "
                + "(POST /fs-normalize/check lists them)"
        }
    }
}
