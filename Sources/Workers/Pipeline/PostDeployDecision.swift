import Foundation
import Store

/// What the post-deploy watch does next, decided from the watch's facts and the database's
/// clock alone (no I/O), so every replica that picks the watch up decides the same way.
///
/// The window is counted from the watch's `started_at` (written by the database when the deploy
/// job handed over), never from when this replica picked it up: a watch resumed after a replica
/// died ends when it would have ended. Failures must be consecutive: an isolated failed probe is
/// forgiven by the next good one. A window that ends with fewer than `failures` failures in a
/// row is healthy — the threshold is the verdict, not the last probe.
public enum PostDeployDecision: Equatable, Sendable {
    /// Probe `health_url` now.
    case probe
    /// Nothing to do before `Duration` from now (the next probe, or the window's end).
    case wait(Duration)
    /// The window passed without `failures` failed probes in a row.
    case healthy
    /// `failures` probes in a row failed.
    case degraded

    /// The next step for a watch with these facts at `now` (the database's clock).
    public static func next(
        probes: Int, consecutiveFailures: Int, startedAt: Date, lastProbeAt: Date?, now: Date,
        settings: RepositoryGates.PostDeploy
    ) -> PostDeployDecision {
        if consecutiveFailures >= settings.failures { return .degraded }
        let end = startedAt.addingTimeInterval(settings.window.seconds)
        if now >= end { return .healthy }
        guard let lastProbeAt, probes > 0 else { return .probe }
        let due = lastProbeAt.addingTimeInterval(settings.interval.seconds)
        if now >= due { return .probe }
        let wake = min(due, end).timeIntervalSince(now)
        return .wait(.milliseconds(Int64((wake * 1000).rounded(.up))))
    }

    /// `next` for a stored watch.
    public static func next(
        _ watch: DeployWatch, now: Date, settings: RepositoryGates.PostDeploy
    ) -> PostDeployDecision {
        next(
            probes: watch.probes, consecutiveFailures: watch.consecutiveFailures, startedAt: watch.startedAt,
            lastProbeAt: watch.lastProbeAt, now: now, settings: settings)
    }
}
