// PromotionClaim.swift — a node's durable promise of a new epoch to one candidate.
//
// Two operators may promote two replicas at once; both decisions can pass on the facts each
// saw. What keeps two writers out of one epoch is this promise, kept like a vote:
//   C1. A node promises epoch E to at most one candidate, and only if E is above its own epoch
//       and above every epoch it promised before (a promise for the same E to the same
//       candidate is repeated, not a new one).
//   C2. The promise is durable (`promotion-claim.json`, written to a temp file, fsync'd,
//       renamed, directory fsync'd) before it is answered, so a restart cannot forget it.
//   C3. A candidate writes its new authority only after a majority of the configured members
//       (itself included, the fenced primary of a switchover included) promised it the epoch.
//       Two majorities share a member, which promised only one of them (C1).
//   C4. A replica re-pointed to a new primary at epoch E checks that it promised E to that
//       primary, or promised nothing at E (it was unreachable during the claim).
// In a two-node cluster a failover therefore cannot pass (one of two is no majority); a
// switchover can (the fenced primary promises). docs/failover.md explains the choice.

import AeroCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct EpochPromise: Sendable, Equatable {
    var epoch: Epoch
    var candidate: NodeID
}

final class PromotionClaimFile: @unchecked Sendable {
    static let name = "promotion-claim.json"
    let directory: String
    private let lock = NSLock()
    private var current: EpochPromise?

    init(directory: String) throws {
        self.directory = directory
        let path = directory + "/" + Self.name
        if let data = FileManager.default.contents(atPath: path) {
            guard let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)),
                  let epoch = json["epoch"]?.uint64Value, let candidate = json["candidate"]?.stringValue else {
                throw StartupError(message: "\(path): not a promotion claim ({\"epoch\":N,\"candidate\":\"id\"})")
            }
            current = EpochPromise(epoch: Epoch(epoch), candidate: NodeID(candidate))
        }
    }

    var promise: EpochPromise? { lock.withLock { current } }

    /// Promises `epoch` to `candidate` (C1, C2); returns why not when it cannot.
    func promise(_ epoch: Epoch, to candidate: NodeID, nodeEpoch: Epoch) -> String? {
        lock.withLock {
            if epoch <= nodeEpoch { return "epoch \(epoch) is not above this node's epoch \(nodeEpoch)" }
            if let current {
                if current.epoch == epoch && current.candidate == candidate { return nil }
                if current.epoch >= epoch {
                    return "epoch \(current.epoch) was already promised to \(current.candidate)"
                }
            }
            let next = EpochPromise(epoch: epoch, candidate: candidate)
            do {
                try write(next)
            } catch {
                return "the promise could not be made durable: \(error)"
            }
            current = next
            return nil
        }
    }

    /// Withdraws the promise of `epoch` to `candidate` after that candidate's attempt failed
    /// before any authority change. Returns false when no such promise is held.
    @discardableResult
    func release(_ epoch: Epoch, candidate: NodeID) -> Bool {
        lock.withLock {
            guard current == EpochPromise(epoch: epoch, candidate: candidate) else { return false }
            let path = directory + "/" + Self.name
            guard unlink(path) == 0 || errno == ENOENT else { return false }
            let dirFD = open(directory, O_RDONLY)
            if dirFD >= 0 {
                _ = fsync(dirFD)
                close(dirFD)
            }
            current = nil
            return true
        }
    }

    private func write(_ promise: EpochPromise) throws {
        let path = directory + "/" + Self.name
        let temp = path + ".tmp"
        let json = JSONValue.object(["epoch": .integer(Int64(promise.epoch.rawValue)), "candidate": .string(promise.candidate.rawValue)])
        try DurableFile.replace(path: path, temp: temp, bytes: Array((json.canonicalJSON + "\n").utf8), directory: directory)
    }
}

/// Atomic, durable replacement of a small file: temp, fsync, rename, fsync of the directory.
enum DurableFile {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func replace(path: String, temp: String, bytes: [UInt8], directory: String) throws {
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw Failure(description: "open \(temp): errno \(errno)") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            guard n > 0 else {
                close(fd)
                throw Failure(description: "write \(temp): errno \(errno)")
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            close(fd)
            throw Failure(description: "fsync \(temp): errno \(errno)")
        }
        close(fd)
        guard rename(temp, path) == 0 else { throw Failure(description: "rename \(temp): errno \(errno)") }
        let dirFD = open(directory, O_RDONLY)
        guard dirFD >= 0 else { throw Failure(description: "open \(directory): errno \(errno)") }
        defer { close(dirFD) }
        guard fsync(dirFD) == 0 else { throw Failure(description: "fsync \(directory): errno \(errno)") }
    }
}
