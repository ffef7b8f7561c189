/// A byte stream kept as its first `headLimit` bytes and its last `tailLimit` bytes, whatever
/// its length: a command that prints a gigabyte costs at most `headLimit + tailLimit` bytes.
/// The head is where a failure usually starts, the tail where a tool prints its summary (and an
/// agent its JSON result), so both ends are kept and the middle is counted, not stored.
struct BoundedOutput: Sendable {
    /// How much of a command's output (`CommandRunner`) is kept from its start.
    static let commandHeadBytes = 64 * 1024
    /// How much of a command's output is kept from its end.
    static let commandTailBytes = 64 * 1024

    let headLimit: Int
    let tailLimit: Int
    /// When false the head is only counted: its bytes went somewhere else (an agent's log file).
    let storesHead: Bool
    private(set) var head: [UInt8] = []
    private(set) var headCount = 0
    /// The tail as a ring: `ring` grows to `tailLimit`, then `ringStart` marks the oldest byte.
    private var ring: [UInt8] = []
    private var ringStart = 0
    /// Bytes dropped between the head and the tail.
    private(set) var omitted = 0

    init(headLimit: Int = commandHeadBytes, tailLimit: Int = commandTailBytes, storesHead: Bool = true) {
        self.headLimit = max(0, headLimit)
        self.tailLimit = max(0, tailLimit)
        self.storesHead = storesHead
    }

    /// Every byte appended so far.
    var total: Int { headCount + omitted + ring.count }

    /// Appends bytes; returns how many of the leading ones went to the head (for a caller that
    /// writes the head elsewhere).
    @discardableResult
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let toHead = min(bytes.count, headLimit - headCount)
        if toHead > 0 {
            if storesHead { head += Self.copy(UnsafeRawBufferPointer(rebasing: bytes[0..<toHead])) }
            headCount += toHead
        }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[toHead...])
        guard !rest.isEmpty else { return toHead }
        guard tailLimit > 0 else {
            omitted += rest.count
            return toHead
        }
        if rest.count >= tailLimit {
            // The chunk alone fills the tail: everything older goes.
            omitted += ring.count + rest.count - tailLimit
            ring = Self.copy(UnsafeRawBufferPointer(rebasing: rest[(rest.count - tailLimit)...]))
            ringStart = 0
            return toHead
        }
        var remaining = rest
        if ring.count < tailLimit {
            let fill = min(remaining.count, tailLimit - ring.count)
            ring += Self.copy(UnsafeRawBufferPointer(rebasing: remaining[..<fill]))
            remaining = UnsafeRawBufferPointer(rebasing: remaining[fill...])
        }
        // Full: new bytes overwrite the oldest, in at most two copies (the ring wraps once).
        while !remaining.isEmpty {
            let count = min(remaining.count, tailLimit - ringStart)
            let start = ringStart
            ring.withUnsafeMutableBytes { ring in
                ring.baseAddress!.advanced(by: start).copyMemory(from: remaining.baseAddress!, byteCount: count)
            }
            ringStart = (ringStart + count) % tailLimit
            omitted += count
            remaining = UnsafeRawBufferPointer(rebasing: remaining[count...])
        }
        return toHead
    }

    /// A byte array copied in one go (a debug build copies element by element otherwise).
    private static func copy(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: bytes.count) { buffer, count in
            if let base = bytes.baseAddress, bytes.count > 0 {
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: base, byteCount: bytes.count)
            }
            count = bytes.count
        }
    }

    /// The tail, oldest byte first.
    var tail: [UInt8] { Array(ring[ringStart...] + ring[..<ringStart]) }

    /// Written between head and tail when bytes were dropped.
    var marker: String { "\n… \(omitted) bytes omitted …\n" }

    /// What follows the head: the marker when anything was dropped, then the tail.
    var trailer: [UInt8] { (omitted > 0 ? Array(marker.utf8) : []) + tail }

    /// Head, marker and tail as text (invalid UTF-8 at a cut becomes U+FFFD).
    var text: String { String(decoding: head + trailer, as: UTF8.self) }
}
