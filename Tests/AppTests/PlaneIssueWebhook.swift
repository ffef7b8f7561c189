import Foundation
import TestSupport
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@testable import App

/// The fixture's Plane `issue` created webhook (work item ORCH-98), with the given labels, signed
/// with `secret` and posted to a replica at `base`; returns the HTTP status it answered.
func sendPlaneIssue(to base: URL, secret: String, labels: [String] = ["auto"]) async throws -> Int? {
    var object = try JSONSerialization.jsonObject(with: Data(try WebhookTests.fixture("plane/issue_created.json"))) as! [String: Any]
    var data = object["data"] as! [String: Any]
    data["labels"] = labels.map { ["name": $0] }
    object["data"] = data
    let body = Array(try JSONSerialization.data(withJSONObject: object))
    var request = URLRequest(url: base.appendingPathComponent("webhook/plane"))
    request.httpMethod = "POST"
    request.httpBody = Data(body)
    request.setValue(WebhookSignature.hmacSHA256Hex(secret: secret, body: body), forHTTPHeaderField: "X-Plane-Signature")
    let (_, response) = try await testURLSession().data(for: request)
    return (response as? HTTPURLResponse)?.statusCode
}
