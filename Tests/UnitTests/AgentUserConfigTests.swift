import Foundation
import Workers
import XCTest

@testable import App

/// `agents.<role>.user` and `group` (issue #9, item 7): names resolved when the file is read,
/// refused when unknown, and refused at start when the orchestrator cannot switch users.
final class AgentUserConfigTests: XCTestCase {
    func testUserAndGroupAreResolvedWhenTheFileIsRead() throws {
        let file = try ConfigFile.parse(
            """
            agents:
              default: { command: ["claude"], user: nobody }
              reviewer: { command: ["claude"], user: nobody, group: "0" }
              other: { command: ["claude"] }
            """)
        let nobody = try XCTUnwrap(file.agents["default"]?.identity)
        XCTAssertEqual(nobody.userName, "nobody")
        XCTAssertEqual(nobody.userID, 65534)
        XCTAssertEqual(nobody.groupID, getpwnam("nobody").pointee.pw_gid)
        XCTAssertFalse(nobody.supplementaryGroups.contains(0), "root's groups are not kept")
        XCTAssertEqual(file.agents["reviewer"]?.identity?.groupID, 0)
        XCTAssertNil(file.agents["other"]?.identity)
    }

    func testUnknownUsersAndGroupsAndAGroupAloneAreRefused() {
        let prefix = "agents:\n  default: { command: [claude], "
        let cases: [(String, String)] = [
            (prefix + "user: no-such-user-orch }\n", "agents.default.user: no such user 'no-such-user-orch'"),
            (prefix + "user: nobody, group: no-such-group-orch }\n", "agents.default.group: no such group"),
            (prefix + "group: nogroup }\n", "agents.default.group: needs agents.default.user"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try ConfigFile.parse(yaml), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
    }

    func testAnotherUserNeedsARootOrchestrator() throws {
        let file = try ConfigFile.parse("agents:\n  default: { command: [claude], user: nobody }\n")
        XCTAssertNoThrow(try file.checkAgentUsers(effectiveUserID: 0))
        XCTAssertThrowsError(try file.checkAgentUsers(effectiveUserID: 1000)) { error in
            XCTAssertTrue("\(error)".contains("agents.default.user"), "\(error)")
            XCTAssertTrue("\(error)".contains("needs the orchestrator to run as root"), "\(error)")
        }
        // The same user as the orchestrator's is no switch at all.
        XCTAssertNoThrow(try file.checkAgentUsers(effectiveUserID: 65534))
        let plain = try ConfigFile.parse("agents:\n  default: { command: [claude] }\n")
        XCTAssertNoThrow(try plain.checkAgentUsers(effectiveUserID: 1000))
    }
}
