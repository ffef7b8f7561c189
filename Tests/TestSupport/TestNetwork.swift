import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A TCP port free right now on 127.0.0.1, chosen below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`). A port from inside that range (what binding port 0
/// returns) can be handed out as the local end of an outgoing connection, say a replica's to
/// Postgres, between this check and the server's own bind: the server then fails to bind.
public func freeTCPPort() -> Int {
    freeTCPPorts(count: 1)
}

/// The first of `count` neighbouring TCP ports all free right now on 127.0.0.1, below the
/// ephemeral range as `freeTCPPort()` explains.
public func freeTCPPorts(count: Int) -> Int {
    let low = ephemeralPortRangeStart()
    if low - count > 10_000 {
        for _ in 0..<1_000 {
            let base = Int.random(in: 10_000...(low - count))
            if (0..<count).allSatisfy({ isTCPPortFree(base + $0) }) { return base }
        }
    }
    return bindLoopback(port: 0) ?? Int.random(in: 20_000...30_000)
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
private func ephemeralPortRangeStart() -> Int {
    let range = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
    return range?.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32_768
}

/// Whether `port` on 127.0.0.1 can be bound right now (for tests that need neighbouring ports).
public func isTCPPortFree(_ port: Int) -> Bool {
    (1...65535).contains(port) && bindLoopback(port: port) == port
}

/// Binds a socket to 127.0.0.1:`port` and closes it; the port it got, or nil.
private func bindLoopback(port: Int) -> Int? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic -> Bool in
            bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
        }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}

/// A URLSession for tests against local servers: nothing cached, and a request that gets no answer
/// fails after 15 s instead of hanging the test.
public func testURLSession() -> URLSession {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = 15
    configuration.timeoutIntervalForResource = 60
    return URLSession(configuration: configuration)
}
