import Foundation
import TestSupport
import XCTest

@testable import App

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The fixture's Plane `issue` webhook (`action`, default created) (work item ORCH-98, or ORCH-`sequence` with an issue
/// id of its own), with the given labels and any other `data` fields replaced, signed with
/// `secret` and posted to a replica at `base`; returns the HTTP status it answered.
func sendPlaneIssue(
    to base: URL, secret: String, labels: [String] = ["auto"], sequence: Int? = nil,
    fields: [String: any Sendable] = [:],
    action: String = "created",
    description: String = "Steps to reproduce: open a draft, press save."
) async throws -> Int? {
    var object =
        try JSONSerialization.jsonObject(with: Data(try WebhookTests.fixture("plane/issue_created.json")))
        as! [String: Any]
    var data = object["data"] as! [String: Any]
    data["labels"] = labels.map { ["name": $0] }
    if let sequence {
        data["sequence_id"] = sequence
        data["id"] = "c0ffee00-1111-4222-8333-\(String(format: "%012d", sequence))"
    }
    // The fixture's description says "Depends on ORCH-97": a task made from it waits for ORCH-97.
    // Tests that drive the pipeline send a description without it unless they say otherwise.
    data["description_stripped"] = description
    data["description_html"] = "<p>\(description)</p>"
    data.merge(fields) { $1 }
    object["data"] = data
    object["action"] = action
    return try await postPlane(object, to: base, secret: secret)
}

/// Posts a Plane webhook body, signed with `secret`, to a replica at `base`; returns the status.
private func postPlane(_ object: [String: Any], to base: URL, secret: String) async throws -> Int? {
    let body = Array(try JSONSerialization.data(withJSONObject: object))
    var request = URLRequest(url: base.appendingPathComponent("webhook/plane"))
    request.httpMethod = "POST"
    request.httpBody = Data(body)
    request.setValue(
        WebhookSignature.hmacSHA256Hex(secret: secret, body: body), forHTTPHeaderField: "X-Plane-Signature")
    let (_, response) = try await testURLSession().data(for: request)
    return (response as? HTTPURLResponse)?.statusCode
}

/// The fixture's Plane comment (by dana, on ORCH-98's issue) saying `text`, written now, signed
/// with `secret` and posted to a replica at `base`; returns the HTTP status it answered.
func sendPlaneComment(to base: URL, secret: String, text: String) async throws -> Int? {
    var object =
        try JSONSerialization.jsonObject(with: Data(try WebhookTests.fixture("plane/comment_created.json")))
        as! [String: Any]
    var data = object["data"] as! [String: Any]
    data["id"] = UUID().uuidString.lowercased()
    data["comment_html"] = "<p>\(text)</p>"
    data["created_at"] = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    object["data"] = data
    return try await postPlane(object, to: base, secret: secret)
}
