/// A repository gate's scope as its `/queue` block shows it: `scope` is `all` when the gate
/// applies to every configured repository and `some` otherwise, and `out_of_scope` names the
/// repositories it does not apply to (`gates: {name: false}`, or left out of `ORCH_<GATE>_REPOS`).
struct GateScope: Sendable {
    let scope: String
    let outOfScope: [String]

    init(_ gate: RepositoryGate, repos: [RepositorySettings]) {
        outOfScope = repos.filter { $0.gates.outOfScope.contains(gate) }.map(\.repo).sorted()
        scope = outOfScope.isEmpty ? QueueReportScope.all : "some"
    }
}
