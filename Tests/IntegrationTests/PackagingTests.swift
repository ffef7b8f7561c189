import Foundation
import TestSupport
import XCTest
import Yams

/// The packaged fleet's files (`Dockerfile`, `docker-compose.yml`, `.env.example`,
/// `deploy/haproxy.cfg`) hold what they must, checked without a Docker engine: the compose file
/// is validated by Debian's `docker-compose config -q` and the load balancer's configuration by
/// `haproxy -c` (both installed by `scripts/test.sh`; a test that needs one is skipped without it).
final class PackagingTests: XCTestCase {
    private func text(_ path: String) throws -> String {
        try String(contentsOf: packageRoot.appendingPathComponent(path), encoding: .utf8)
    }

    private static func variables(in text: String) -> Set<String> {
        Set(
            text.matches(of: /ORCH_[A-Z0-9_]*[A-Z0-9]/).map { String($0.output) })
    }

    /// The variables of the README's configuration table (`| \`ORCH_…\` | default | meaning |`).
    private func readmeVariables() throws -> Set<String> {
        let rows = try text("README.md").split(separator: "\n").filter { $0.hasPrefix("| `ORCH_") }
        return rows.reduce(into: Set<String>()) { names, row in
            let first = row.split(separator: "|", omittingEmptySubsequences: true).first.map(String.init) ?? ""
            names.formUnion(Self.variables(in: first))
        }
    }

    /// Runs a program found on PATH; nil when it is not installed.
    private func run(
        _ program: String, _ arguments: [String], in directory: URL, environment: [String: String] = [:]
    )
        throws -> (status: Int32, output: String)?
    {
        let paths =
            (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        guard let executable = paths.map({ "\($0)/\(program)" }).first(where: FileManager.default.isExecutableFile)
        else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// The compose file as `docker-compose config` resolves it, with `.env.example` as `.env`.
    private func resolvedCompose() throws -> [String: Any] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-compose-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for file in ["docker-compose.yml", "Dockerfile", "deploy"] {
            try FileManager.default.copyItem(
                at: packageRoot.appendingPathComponent(file), to: directory.appendingPathComponent(file))
        }
        try FileManager.default.copyItem(
            at: packageRoot.appendingPathComponent(".env.example"), to: directory.appendingPathComponent(".env"))
        guard let check = try run("docker-compose", ["config", "-q"], in: directory) else {
            throw XCTSkip("docker-compose is not installed (scripts/test.sh installs it)")
        }
        XCTAssertEqual(check.status, 0, "docker-compose config -q: \(check.output)")
        let resolved = try XCTUnwrap(try run("docker-compose", ["config"], in: directory))
        XCTAssertEqual(resolved.status, 0, resolved.output)
        return try XCTUnwrap(try Yams.load(yaml: resolved.output) as? [String: Any])
    }

    func testEveryConfigurationVariableIsKnownToTheProgramAndInTheEnvExample() throws {
        let documented = try readmeVariables()
        XCTAssertGreaterThan(documented.count, 40)
        // ORCH_LB_* are the load balancer's (deploy/haproxy.cfg), not the orchestrator's.
        let example = Self.variables(in: try text(".env.example")).filter { !$0.hasPrefix("ORCH_LB_") }
        XCTAssertEqual(documented.subtracting(example).sorted(), [], "README variables missing from .env.example")
        XCTAssertEqual(example.subtracting(documented).sorted(), [], ".env.example names variables the README lacks")
        let compose = Self.variables(in: try text("docker-compose.yml")).filter { !$0.hasPrefix("ORCH_LB_") }
        XCTAssertEqual(compose.subtracting(documented).sorted(), [], "docker-compose.yml names unknown variables")
        // Known to the program: each is read somewhere in Sources (by its full name, or as
        // ORCH_<GATE>_REPOS, which is built from the gate's name).
        var read = Set<String>()
        let sources = packageRoot.appendingPathComponent("Sources")
        for case let file as URL in FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        where file.pathExtension == "swift" {
            read.formUnion(Self.variables(in: try String(contentsOf: file, encoding: .utf8)))
        }
        let unread = documented.subtracting(read).filter { !$0.hasSuffix("_REPOS") }
        XCTAssertEqual(unread.sorted(), [], "README variables no source file reads")
    }

    func testTheComposeFileValidatesAndHoldsTheFleet() throws {
        let compose = try resolvedCompose()
        let services = try XCTUnwrap(compose["services"] as? [String: [String: Any]])
        let postgres = try XCTUnwrap(services["postgres"])
        XCTAssertNotNil(postgres["healthcheck"], "postgres has a health check")
        XCTAssertTrue((postgres["image"] as? String)?.hasPrefix("postgres:") == true)
        XCTAssertTrue(
            (postgres["volumes"] as? [Any])?.contains { "\($0)".contains("pgdata") } == true, "a named volume")
        XCTAssertNotNil((compose["volumes"] as? [String: Any])?["pgdata"])

        let migrate = try XCTUnwrap(services["migrate"])
        XCTAssertEqual(migrate["command"] as? [String], ["migrate"])
        let migrateAfter = (migrate["depends_on"] as? [String: [String: String]])?["postgres"]?["condition"]
        XCTAssertEqual(migrateAfter, "service_healthy")

        let replicas = services.keys.filter { $0.hasPrefix("replica") }.sorted()
        XCTAssertEqual(replicas, ["replica1", "replica2", "replica3"])
        for name in replicas + ["migrate"] {
            let service = try XCTUnwrap(services[name])
            let build = service["build"] as? [String: Any]
            XCTAssertEqual(build?["dockerfile"] as? String, "Dockerfile", name)
            let environment = service["environment"] as? [String: Any]
            XCTAssertNotNil(environment?["ORCH_DATABASE_URL"], name)
            XCTAssertNotNil(environment?["ORCH_ADMIN_TOKEN"], "\(name) reads .env")
        }
        for name in replicas {
            let service = try XCTUnwrap(services[name])
            let after = (service["depends_on"] as? [String: [String: String]])?["migrate"]?["condition"]
            XCTAssertEqual(after, "service_completed_successfully", name)
            let check = (service["healthcheck"] as? [String: Any])?["test"] as? [String]
            XCTAssertTrue(check?.joined(separator: " ").contains("/health/ready") == true, "\(name): \(check ?? [])")
            XCTAssertEqual((service["environment"] as? [String: Any])?["ORCH_REPLICA_NAME"] as? String, name)
        }

        // The load balancer's backends are exactly the replicas, through the shared haproxy.cfg.
        let balancer = try XCTUnwrap(services["loadbalancer"])
        XCTAssertTrue(
            (balancer["volumes"] as? [Any])?.contains { "\($0)".contains("deploy/haproxy.cfg") } == true)
        let environment = try XCTUnwrap(balancer["environment"] as? [String: String])
        let backends = environment.filter { $0.key.hasPrefix("ORCH_LB_REPLICA_") }.values.map {
            String($0.split(separator: ":")[0])
        }
        XCTAssertEqual(backends.sorted(), replicas)
        XCTAssertNotNil(balancer["ports"])
    }

    func testTheLoadBalancerConfigurationChecksReadinessAndIsValid() throws {
        let config = try text("deploy/haproxy.cfg")
        XCTAssertTrue(config.contains("option httpchk GET /health/ready"))
        for index in 1...3 {
            XCTAssertTrue(config.contains("server replica\(index) \"${ORCH_LB_REPLICA_\(index)}\" check"), "\(index)")
        }
        let environment = [
            "ORCH_LB_BIND": "127.0.0.1:1", "ORCH_LB_REPLICA_1": "127.0.0.1:2", "ORCH_LB_REPLICA_2": "127.0.0.1:3",
            "ORCH_LB_REPLICA_3": "127.0.0.1:4",
        ]
        guard
            let check = try run(
                "haproxy", ["-c", "-f", "deploy/haproxy.cfg"], in: packageRoot, environment: environment)
        else { throw XCTSkip("haproxy is not installed (scripts/test.sh installs it)") }
        XCTAssertEqual(check.status, 0, check.output)
    }

    func testTheDockerfileBuildsInOneStageAndRunsSlimAsAnotherUser() throws {
        let dockerfile = try text("Dockerfile")
        let stages = dockerfile.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
        XCTAssertEqual(stages.count, 2, "build and runtime")
        XCTAssertTrue(stages.first?.contains("swift:6.3") == true)
        XCTAssertTrue(stages.last?.contains("slim") == true)
        for package in ["libpq-dev", "libcurl4-openssl-dev", "libssl-dev", "libpq5", "git", "ca-certificates"] {
            XCTAssertTrue(dockerfile.contains(package), package)
        }
        XCTAssertTrue(dockerfile.contains("USER orchestrator"))
        XCTAssertTrue(dockerfile.contains("HEALTHCHECK"))
        XCTAssertTrue(dockerfile.contains("/health"))
        XCTAssertTrue(dockerfile.contains(#"ENTRYPOINT ["/usr/local/bin/orchestrator"]"#))
        XCTAssertTrue(dockerfile.contains(#"CMD ["serve"]"#))
        XCTAssertTrue(dockerfile.contains("COPY migrations") && dockerfile.contains("COPY prompts"))
        let ignored = try text(".dockerignore")
        XCTAssertTrue(ignored.contains(".build/") && ignored.contains(".git/") && ignored.contains(".env"))
    }

    /// The operations guide (issue #14 item 6) answers every question the issue lists, and names
    /// every kill switch the README documents.
    func testTheOperationsGuideCoversEveryTopicAndEveryKillSwitch() throws {
        let guide = try text("docs/operations.md")
        let headings = Set(guide.split(separator: "\n").filter { $0.hasPrefix("#") }.map(String.init))
        for heading in [
            "## Sizing: database connections and disk", "## Scaling replicas up and down",
            "## Rolling upgrades and migrations", "### What a migration may do while older replicas run",
            "## PostgreSQL connection poolers (PgBouncer)", "## Managed PostgreSQL", "## TLS to PostgreSQL",
            "## Backups", "## Kill switches", "## Reading /queue, /metrics and the Prometheus series",
            "### A replica stuck", "### A repository frozen", "### A task held", "### The breaker open",
            "### The disk watchdog firing",
        ] {
            XCTAssertTrue(headings.contains(heading), "docs/operations.md has \(heading)")
        }
        for term in ["sslmode", "pool_mode = session", "LISTEN", "advisory", "idle in transaction"] {
            XCTAssertTrue(guide.contains(term), "docs/operations.md explains \(term)")
        }
        let switches = try readmeVariables().filter { $0.hasSuffix("_ENABLED") }
        XCTAssertFalse(switches.isEmpty)
        for name in switches.sorted() {
            XCTAssertTrue(guide.contains(name), "the kill switch \(name) is in docs/operations.md")
        }
    }
}
