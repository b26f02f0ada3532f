// ReseedClient.swift — re-seeding a stopped node's data dir from its primary's checkpoint.
//
// Sequence (`Reseed.run`):
//   1. GET /v1/status of the source: it must be a primary, at an epoch not below the local one
//      (never follow a peer of a lower epoch); its epoch history is what the node adopts.
//   2. GET /v1/checkpoint in chunks of at most 1 MiB: each chunk's CRC32C is checked, its offset
//      must be the next one, the checkpoint LSN and the primary's epoch must not change. A
//      replaced checkpoint (410), a changed epoch or a failed request restarts the transfer from
//      scratch, at most `attemptsMax` times (simple and safe: no partial state is kept).
//   3. GET /v1/status again: still the primary of the same epoch, so the history is current.
//   4. The image is verified against the history and installed atomically (`ReseedInstall`),
//      after the event is journaled in the node's `events.jsonl` (fsync'd).
// Afterwards the node starts as a replica following the source and streams WAL from the
// checkpoint's LSN + 1.

import AeroCore
import AeroStorage
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

public struct ReseedError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum Reseed {
    /// Transfers restarted from scratch at most this many times.
    public static let attemptsMax = 5
    /// The largest checkpoint accepted (it is held in memory while it is verified).
    public static let checkpointBytesMax: UInt64 = 4 << 30
    /// Each HTTP request to the source.
    public static let requestTimeoutMs = 30_000

    public struct Outcome: Sendable {
        public var primary: NodeID
        public var epoch: Epoch
        public var checkpointLSN: LSN
        public var entries: Int
        public var bytes: Int
        public var discardedDurableLSN: UInt64
        public var discardedEpoch: Epoch?
    }

    struct PrimaryFacts: Equatable {
        var id: NodeID
        var epoch: Epoch
        var history: [EpochHistoryEntry]
    }

    /// Re-seeds `dataDir` (no node running on it) for node `nodeID` from the primary whose HTTP
    /// API is at `source`. `discardLocalState` must be true if the dir holds WAL or checkpoints.
    public static func run(dataDir: String, nodeID: NodeID, source: HostPort, discardLocalState: Bool,
                           reason: String, journalLineBytesMax: Int = 65_536) async throws -> Outcome {
        let local = try ReseedInstall.readAuthority(directory: dataDir)
        if let local, local.nodeID != nodeID {
            throw ReseedError("\(dataDir) belongs to node \(local.nodeID), not \(nodeID)")
        }
        let scan = try? StorageEngine.inspect(directory: dataDir)
        let holdsData = try ReseedInstall.holdsData(directory: dataDir)
        if holdsData && !discardLocalState {
            throw ReseedError("\(dataDir) holds WAL through LSN \(scan?.report.lastLSN ?? 0) at epoch \(local?.epoch.rawValue ?? 0); "
                + "re-seeding discards it: pass --discard-local-state to confirm")
        }
        var lastError = "no attempt made"
        for attempt in 1...attemptsMax {
            do {
                let before = try await primaryFacts(source)
                if let local, before.epoch < local.epoch {
                    throw ReseedError("REPL-STALE-EPOCH: \(before.id) at \(source) is at epoch \(before.epoch), below this node's epoch \(local.epoch); never follow a lower epoch")
                }
                let (lsn, bytes) = try await fetchCheckpoint(source, epoch: before.epoch)
                let after = try await primaryFacts(source)
                guard after == before else { throw Retry("the primary's epoch or history changed during the transfer") }
                let authority = Authority(nodeID: nodeID, role: .replica, epoch: before.epoch, following: before.id, history: before.history)
                let facts = try ReseedInstall.verify(bytes, history: before.history)
                precondition(facts.lsn == lsn, "checkpoint header and file name agree")
                return try ReseedInstall.withDirectoryLocked(dataDir) {
                    let journal = try EventJournal(directory: dataDir, node: nodeID, lineBytesMax: journalLineBytesMax)
                    defer { try? journal.close() }
                    _ = try journal.append("reseed", fields: [
                        "reason": .string(reason), "source": .string(source.description), "primary": .string(before.id.rawValue),
                        "epoch": .integer(Int64(before.epoch.rawValue)), "checkpoint_lsn": .integer(Int64(lsn.rawValue)),
                        "checkpoint_bytes": .integer(Int64(bytes.count)),
                        "discarded_durable_lsn": .integer(Int64(scan?.report.lastLSN ?? 0)),
                        "discarded_epoch": .integer(Int64(local?.epoch.rawValue ?? 0)), "attempt": .integer(Int64(attempt)),
                    ], durability: .sync)
                    try ReseedInstall.install(bytes, authority: authority, directory: dataDir)
                    _ = try journal.append("reseed_installed", fields: ["checkpoint_lsn": .integer(Int64(lsn.rawValue))], durability: .sync)
                    return Outcome(primary: before.id, epoch: before.epoch, checkpointLSN: lsn, entries: facts.entries, bytes: bytes.count,
                                   discardedDurableLSN: scan?.report.lastLSN ?? 0, discardedEpoch: local?.epoch)
                }
            } catch let retry as Retry {
                lastError = retry.message
            }
        }
        throw ReseedError("re-seeding from \(source) failed \(attemptsMax) times; last: \(lastError)")
    }

    /// What a verified transfer brings: the image and the authority the node adopts with it.
    struct Transfer {
        var primary: NodeID
        var lsn: LSN
        var bytes: [UInt8]
        var authority: Authority
        var attempt: Int
    }

    /// Steps 1–3 of `run` for a running node (`ReseedInPlace`): the source's facts (a primary at
    /// an epoch not below `localEpoch`), its checkpoint, its facts again, the image verified
    /// against its history. Restarted from scratch at most `attemptsMax` times.
    static func transfer(source: HostPort, nodeID: NodeID, localEpoch: Epoch) async throws -> Transfer {
        var lastError = "no attempt made"
        for attempt in 1...attemptsMax {
            do {
                let before = try await primaryFacts(source)
                guard before.epoch >= localEpoch else {
                    throw ReseedError("REPL-STALE-EPOCH: \(before.id) at \(source) is at epoch \(before.epoch), below this node's epoch \(localEpoch); never follow a lower epoch")
                }
                let (lsn, bytes) = try await fetchCheckpoint(source, epoch: before.epoch)
                let after = try await primaryFacts(source)
                guard after == before else { throw Retry("the primary's epoch or history changed during the transfer") }
                let facts = try ReseedInstall.verify(bytes, history: before.history)
                precondition(facts.lsn == lsn, "checkpoint header and file name agree")
                return Transfer(primary: before.id, lsn: lsn, bytes: bytes,
                                authority: Authority(nodeID: nodeID, role: .replica, epoch: before.epoch, following: before.id, history: before.history),
                                attempt: attempt)
            } catch let retry as Retry {
                lastError = retry.message
            }
        }
        throw ReseedError("re-seeding from \(source) failed \(attemptsMax) times; last: \(lastError)")
    }

    /// A condition under which the transfer starts over.
    struct Retry: Error { let message: String; init(_ message: String) { self.message = message } }

    static func primaryFacts(_ source: HostPort) async throws -> PrimaryFacts {
        let (status, body, _) = try await get(source, "/v1/status")
        guard status == 200 else { throw Retry("GET /v1/status answered \(status)") }
        let json: JSONValue
        do { json = try JSONParser.parse(String(decoding: body, as: UTF8.self)) } catch {
            throw ReseedError("\(source): /v1/status is not JSON: \(error)")
        }
        guard let node = json["node"], let id = node["id"]?.stringValue, let role = node["role"]?.stringValue,
              let epoch = node["epoch"]?.integerValue, let entries = json["epoch_history"]?.arrayValue
        else { throw ReseedError("\(source): /v1/status lacks node.id, node.role, node.epoch or epoch_history") }
        guard role == "primary" else {
            throw ReseedError("\(id) at \(source) is a \(role) (following \(node["following"]?.stringValue ?? "none")); re-seed from the primary")
        }
        var history: [EpochHistoryEntry] = []
        for entry in entries {
            guard let parsed = EpochHistoryEntry(json: entry)
            else { throw ReseedError("\(source): malformed epoch_history entry \(entry.canonicalJSON)") }
            history.append(parsed)
        }
        guard history.last?.epoch.rawValue == UInt64(epoch), history.last?.primary.rawValue == id else {
            throw ReseedError("\(source): the epoch history does not end with \(id)'s epoch \(epoch)")
        }
        return PrimaryFacts(id: NodeID(id), epoch: Epoch(UInt64(epoch)), history: history)
    }

    static func fetchCheckpoint(_ source: HostPort, epoch: Epoch) async throws -> (LSN, [UInt8]) {
        var image: [UInt8] = []
        var lsn: LSN?
        var total: UInt64 = 0
        repeat {
            let path = lsn.map { "/v1/checkpoint?lsn=\($0.rawValue)&offset=\(image.count)" } ?? "/v1/checkpoint"
            let (status, body, headers) = try await get(source, path)
            if status == 410 { throw Retry("checkpoint \(lsn.map { "\($0)" } ?? "?") was replaced during the transfer") }
            guard status == 200 else {
                throw ReseedError("\(source) refused \(path): \(status) \(String(decoding: body.prefix(512), as: UTF8.self))")
            }
            guard let chunkLSN = headers["x-aerodb-checkpoint-lsn"].flatMap(UInt64.init),
                  let size = headers["x-aerodb-checkpoint-bytes"].flatMap(UInt64.init),
                  let offset = headers["x-aerodb-chunk-offset"].flatMap(UInt64.init),
                  let crc = headers["x-aerodb-chunk-crc32c"].flatMap({ UInt32($0, radix: 16) }),
                  let chunkEpoch = headers["x-aerodb-epoch"].flatMap(UInt64.init)
            else { throw ReseedError("\(source): checkpoint chunk without its X-AeroDB-Checkpoint-* headers") }
            guard chunkEpoch == epoch.rawValue else { throw Retry("the primary's epoch changed to \(chunkEpoch) during the transfer") }
            guard size <= checkpointBytesMax else { throw ReseedError("checkpoint of \(size) bytes exceeds \(checkpointBytesMax)") }
            if let lsn, lsn.rawValue != chunkLSN || size != total { throw Retry("the checkpoint changed during the transfer") }
            guard offset == UInt64(image.count) else { throw Retry("chunk at offset \(offset), expected \(image.count)") }
            let bytes = [UInt8](body)
            guard CRC32C.checksum(bytes) == crc else { throw Retry("chunk at offset \(offset) fails its CRC32C") }
            guard !bytes.isEmpty || size == UInt64(image.count) else { throw Retry("empty chunk before the end") }
            lsn = LSN(chunkLSN)
            total = size
            image += bytes
        } while UInt64(image.count) < total
        return (lsn!, image)
    }

    static func get(_ source: HostPort, _ path: String) async throws -> (Int, Data, [String: String]) {
        guard let url = URL(string: "http://\(source)\(path)") else { throw ReseedError("cannot form a URL from \(source)") }
        let request = URLRequest(url: url, timeoutInterval: Double(requestTimeoutMs) / 1000)
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            guard let http = response as? HTTPURLResponse else { throw Retry("no HTTP response from \(source)") }
            var headers: [String: String] = [:]
            for (key, value) in http.allHeaderFields {
                if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
            }
            return (http.statusCode, data, headers)
        } catch let retry as Retry {
            throw retry
        } catch {
            throw Retry("\(source)\(path): \(error.localizedDescription)")
        }
    }
}
