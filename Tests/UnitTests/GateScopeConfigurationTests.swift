import Foundation
import Workers
import XCTest

@testable import App

/// Each repository gate's scope: `gates: {name: false}` in a repository's entry and the list
/// `ORCH_<GATE>_REPOS` take repositories out of it; a typo in either stops the start.
final class GateScopeConfigurationTests: XCTestCase {
    private var config: URL!

    override func setUpWithError() throws {
        config = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-scope-\(UUID().uuidString.prefix(8)).yaml")
        try """
        repos:
          - project: API
            repo: acme/api
            clone_url: /srv/git/api
            max_active_tasks: 2
            gates: { coverage_gate: false, post_deploy: true }
          - project: WEB
            repo: acme/web
            clone_url: /srv/git/web
        """.write(to: config, atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: config)
    }

    private func configuration(_ environment: [String: String] = [:]) throws -> AppConfiguration {
        try AppConfiguration(environment: environment.merging(["ORCH_CONFIG": config.path]) { a, _ in a })
    }

    private func repo(_ name: String, in configuration: AppConfiguration) throws -> RepositorySettings {
        try XCTUnwrap(configuration.file.repos.first { $0.repo == name })
    }

    func testEveryGateAppliesToEveryRepositoryByDefault() throws {
        let configuration = try configuration()
        let web = try repo("acme/web", in: configuration)
        for gate in RepositoryGate.allCases {
            XCTAssertTrue(configuration.gates.applies(gate, to: web), gate.rawValue)
        }
        XCTAssertEqual(configuration.serialGateLimits, ["acme/api": 2, "acme/web": 1])
    }

    func testTheRepositorysGatesMappingTakesItOutOfAGate() throws {
        let configuration = try configuration()
        let api = try repo("acme/api", in: configuration)
        XCTAssertEqual(api.gates.outOfScope, [.coverageGate])
        XCTAssertFalse(configuration.gates.applies(.coverageGate, to: api))
        XCTAssertTrue(configuration.gates.applies(.postDeploy, to: api), "post_deploy: true keeps it")
    }

    func testAListNamesTheOnlyRepositoriesAGateAppliesTo() throws {
        let configuration = try configuration([
            "ORCH_SERIAL_GATE_REPOS": "acme/web", "ORCH_MERGE_GATE_REPOS": " acme/api , acme/web ",
            "ORCH_TASK_DEPS_REPOS": "",
        ])
        let api = try repo("acme/api", in: configuration)
        let web = try repo("acme/web", in: configuration)
        XCTAssertEqual(api.gates.outOfScope, [.coverageGate, .serialGate])
        XCTAssertEqual(web.gates.outOfScope, [])
        let limits: [String: Int?] = ["acme/api": nil, "acme/web": 1]
        XCTAssertEqual(configuration.serialGateLimits, limits)
    }

    func testTheKillSwitchStillWinsOverTheScope() throws {
        let configuration = try configuration(["ORCH_SERIAL_GATE_ENABLED": "0"])
        let web = try repo("acme/web", in: configuration)
        XCTAssertFalse(configuration.gates.applies(.serialGate, to: web))
        let limits: [String: Int?] = ["acme/api": nil, "acme/web": nil]
        XCTAssertEqual(configuration.serialGateLimits, limits)
    }

    func testTyposStopTheStartNamingTheKey() throws {
        XCTAssertThrowsError(try configuration(["ORCH_COVERAGE_GATE_REPOS": "acme/api,acme/wbe"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("ORCH_COVERAGE_GATE_REPOS") && text.contains("acme/wbe"), text)
        }
        XCTAssertThrowsError(
            try ConfigFile.parse(
                """
                repos:
                  - project: API
                    repo: acme/api
                    clone_url: /srv/git/api
                    gates: { coverage: false }
                """)
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("repos[0].gates.coverage") && text.contains("coverage_gate"), text)
        }
    }
}
