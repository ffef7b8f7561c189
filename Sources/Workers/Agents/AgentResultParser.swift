import Foundation
import Store

/// Reads an agent's result from its log: Claude Code's `--output-format json` object, or the last
/// line of `--output-format stream-json` (a `{"type":"result",…}` event). A plain-text agent has
/// no result: cost and tokens stay unknown (nil).
enum AgentResultParser {
    /// Only the end of a long log is read: the result is the last thing an agent prints.
    static let tailBytes = 1 << 20

    static func parse(logPath: String, format: any AgentOutputFormat = AgentOutputFormats.standard) -> AgentUsage? {
        tail(of: logPath, bytes: tailBytes).flatMap { format.result(fromLogTail: $0) }
    }

    /// The last non-empty line of a log (at most 500 characters of it), e.g. what a stalled agent
    /// printed last; nil when the log is empty or unreadable.
    static func lastLine(logPath: String) -> String? {
        guard let text = tail(of: logPath, bytes: 8 << 10) else { return nil }
        let line = text.split(whereSeparator: \.isNewline).last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        return line.map { String($0.trimmingCharacters(in: .whitespaces).prefix(500)) }
    }

    /// The last `bytes` of the file at `path` as text; nil when it is empty or unreadable.
    private static func tail(of path: String, bytes: Int) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > UInt64(bytes) ? size - UInt64(bytes) : 0)
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func parse(_ output: String) -> AgentUsage? {
        // Last line first: stream-json ends with the result event; json mode prints one line.
        for line in output.split(whereSeparator: \.isNewline).reversed() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("{"), let usage = usage(fromJSON: Data(trimmed.utf8)) else { continue }
            return usage
        }
        // A pretty-printed object spanning several lines: from the last line that opens one.
        if let start = output.range(of: "\n{", options: .backwards)?.lowerBound
            ?? (output.hasPrefix("{") ? output.startIndex : nil)
        {
            return usage(fromJSON: Data(output[start...].utf8))
        }
        return nil
    }

    private static func usage(fromJSON data: Data) -> AgentUsage? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        let isResult = object["type"] as? String == "result"
        guard isResult || object["total_cost_usd"] != nil || object["usage"] != nil else { return nil }
        let usage = object["usage"] as? [String: Any] ?? [:]
        func int(_ value: Any?) -> Int? { (value as? NSNumber)?.intValue }
        let model = (object["model"] as? String) ?? (object["modelUsage"] as? [String: Any])?.keys.sorted().first
        return AgentUsage(
            inputTokens: int(usage["input_tokens"]), outputTokens: int(usage["output_tokens"]),
            cacheReadTokens: int(usage["cache_read_input_tokens"]),
            cacheWriteTokens: int(usage["cache_creation_input_tokens"]),
            costUSD: (object["total_cost_usd"] as? NSNumber)?.doubleValue
                ?? (object["cost_usd"] as? NSNumber)?.doubleValue,
            model: model, subtype: object["subtype"] as? String, numTurns: int(object["num_turns"]),
            isError: object["is_error"] as? Bool, resultText: object["result"] as? String,
            sessionID: object["session_id"] as? String)
    }
}
