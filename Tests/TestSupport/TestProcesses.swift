import Foundation

/// Processes of a process group that are still alive, from `/proc` (zombies, waiting for a
/// reaper, do not count).
public func livingProcesses(inGroup group: Int) -> [Int] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int.init).filter { pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 2 && fields[0] != "Z" && Int(fields[2]) == group
    }
}
