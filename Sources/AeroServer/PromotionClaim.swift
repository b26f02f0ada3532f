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
import AeroStorage
import Foundation

struct EpochPromise: Sendable, Equatable {
    var epoch: Epoch
    var candidate: NodeID
}

final class PromotionClaimFile: @unchecked Sendable {
    static let name = "promotion-claim.json"
    let directory: String
    /// The file-system seam (AeroStorage's StorageIO): tests inject crashes into C2's write.
    private let io: any StorageIO
    private let lock = NSLock()
    private var current: EpochPromise?

    init(directory: String, io: any StorageIO = PosixIO()) throws {
        self.directory = directory
        self.io = io
        let path = directory + "/" + Self.name
        if io.exists(path) {
            let bytes: [UInt8]
            do {
                let file = try io.open(path, create: false)
                defer { file.close() }
                bytes = try file.read(at: 0, count: Int(try file.size()))
            } catch {
                throw StartupError(message: "\(path): \(error)")
            }
            guard let json = try? JSONParser.parse(String(decoding: bytes, as: UTF8.self)),
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
            if io.exists(path) {
                guard (try? io.remove(path)) != nil else { return false }
            }
            try? io.syncDirectory(directory)
            current = nil
            return true
        }
    }

    private func write(_ promise: EpochPromise) throws {
        let path = directory + "/" + Self.name
        let temp = path + ".tmp"
        let json = JSONValue.object(["epoch": .integer(Int64(promise.epoch.rawValue)), "candidate": .string(promise.candidate.rawValue)])
        try DurableFile.replace(path: path, temp: temp, bytes: Array((json.canonicalJSON + "\n").utf8), directory: directory, io: io)
    }
}

/// Atomic, durable replacement of a small file: AeroStorage's one durable-replace path
/// (`StorageIO.replaceDurably`: temp, sync, rename, sync of the directory), through the seam
/// the fault-injection tests replace. Throws `StorageIOError`.
enum DurableFile {
    /// `path` is `directory/<name>` and `temp` is `path + ".tmp"` (every caller's layout; the
    /// data dir's open removes stale `.tmp` files).
    static func replace(path: String, temp: String, bytes: [UInt8], directory: String, io: any StorageIO = PosixIO()) throws {
        precondition(path.hasPrefix(directory + "/") && temp == path + ".tmp",
                     "DurableFile.replace: \(path) is not a file in \(directory) or \(temp) is not its temp name")
        try io.replaceDurably(String(path.dropFirst(directory.count + 1)), in: directory, with: bytes)
    }
}
