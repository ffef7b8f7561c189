/// A configuration problem, naming the key and what is wrong with it; the process refuses to start.
struct ConfigurationError: Error, CustomStringConvertible {
    let key: String
    let problem: String

    var description: String { "invalid configuration: \(key): \(problem)" }
}
