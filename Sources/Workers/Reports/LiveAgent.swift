import Foundation
import Store

/// A live agent run in `GET /metrics` (`agents`): where it runs, for how long, and its CPU so far.
public struct LiveAgent: Encodable, Sendable {
    public let runId: Int64
    public let workItem: String?
    public let stage: String?
    public let role: String
    public let replica: String
    public let host: String
    public let pid: Int?
    /// To the tenth of a second.
    public let runtimeSeconds: Double
    /// User + system CPU of the agent process so far, in clock ticks (`clk_tck` per second);
    /// absent for a run on another host or whose process is gone.
    public let cpuTicks: Int64?

    /// The live figures of `run`, seen from `localHost` at `now`.
    public init(run: AgentRun, localHost: String, now: Date) {
        // /proc only speaks for this host, and only for the very process (pid + start time): a
        // reused pid would lend another process's CPU time to the run.
        let local = run.host == localHost && run.pid.flatMap(ProcStat.startTime) == run.processStart
        runId = run.id
        workItem = run.workItem
        stage = run.stage
        role = run.role
        replica = run.replicaID
        host = run.host
        pid = run.pid
        runtimeSeconds = now.timeIntervalSince(run.startedAt).rounded(toPlaces: 1)
        cpuTicks = local ? run.pid.flatMap(ProcStat.cpuTicks) : nil
    }
}
