import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A TCP port free right now on 127.0.0.1, chosen by the kernel (bind to port 0, read it back,
/// close). Picking a random number instead can hit a port the kernel already handed out as the
/// local end of an outgoing connection: the server then fails to bind.
public func freeTCPPort() -> Int {
    bindLoopback(port: 0) ?? Int.random(in: 20_000...30_000)
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
