// ReseedInstall.swift — replacing a closed data directory's state by a primary's checkpoint.
//
// Re-seeding is the one explicit way a node's WAL is cut back or replaced: when the WAL a
// replica needs is gone from its primary, or when an operator re-seeds a diverged node
// (`aerodb reseed`). Everything here runs with no engine open on the directory.
//
// Invariants:
//   RS1 All or nothing. The new state (checkpoint file + authority file) is built in
//       `<dir>/reseed.staging/`, each file written with `StorageIO.replaceDurably` (synced,
//       the staging directory synced), then
//       renamed to `<dir>/reseed.ready/` and `<dir>` synced: that rename is the commit point.
//       A crash before it leaves the old state (the staging dir is discarded at the next
//       `finishPending`); a crash after it is rolled forward by `finishPending` (idempotent;
//       every `StorageEngine.open` and every `install` runs it first).
//   RS2 The image is verified (its CRC32C, its structure) before anything is staged, and its
//       epoch is the epoch the adopted history gives its LSN.
//   RS3 The adopted authority is a replica's, of this node's id, at an epoch not below the
//       local one, read after a pending install is applied (the epoch on disk never goes
//       backwards, storage A2); its history replaces the
//       local history — the explicit, journaled rewind, never a silent one.
//   RS4 Applying removes every WAL segment and checkpoint of the old state before the new
//       checkpoint is moved in, then moves the authority file, then syncs the directory.
//
// States of a directory: clean ──install──▶ staging ──(rename, commit)──▶ ready ──apply──▶ clean.
// `finishPending` performs the recovery transitions (staging → clean: discard; ready → clean: apply).

import AeroCore
import Foundation

public enum ReseedInstall {
    static let stagingName = "reseed.staging"
    static let readyName = "reseed.ready"

    /// What `verify` learned from an image.
    public struct ImageFacts: Sendable, Equatable {
        public var lsn: LSN
        public var epoch: Epoch
        public var entries: Int
    }

    /// RS2: decodes and checks a checkpoint image against the history it will be installed with.
    public static func verify(_ bytes: [UInt8], history: [EpochHistoryEntry]) throws -> ImageFacts {
        let image: CheckpointFormat.Image
        switch CheckpointFormat.decode(bytes) {
        case .failure(let f): throw StorageError.badCheckpoint("checkpoint image: \(f.why)")
        case .success(let i): image = i
        }
        if image.lsn != .zero {
            let expected = history.last(where: { $0.startLSN <= image.lsn })?.epoch
            guard expected == image.epoch else {
                throw StorageError.badCheckpoint(
                    "checkpoint image at LSN \(image.lsn) is of epoch \(image.epoch), but the primary's history gives epoch \(expected.map { "\($0)" } ?? "none") there")
            }
        }
        return ImageFacts(lsn: image.lsn, epoch: image.epoch, entries: image.entries.count)
    }

    /// True when the directory holds WAL segments or checkpoints (state that re-seeding discards).
    public static func holdsData(directory: String, io: any StorageIO = PosixIO()) throws -> Bool {
        guard io.exists(directory) else { return false }
        return try wrap {
            try io.list(directory).contains { WALFormat.segmentFirstLSN($0) != nil || CheckpointFormat.lsn(ofFileName: $0) != nil }
        }
    }

    /// The directory's authority file, if any (read-only).
    public static func readAuthority(directory: String, io: any StorageIO = PosixIO()) throws -> Authority? {
        try wrap { try AuthorityFile.read(directory: directory, io: io) }
    }

    /// Takes the directory's lock (one process per data dir) for the duration of `body`.
    public static func withDirectoryLocked<T>(_ directory: String, io: any StorageIO = PosixIO(), _ body: () throws -> T) throws -> T {
        let lock = try wrap { () throws -> any DirectoryLock in
            try io.createDirectory(directory)
            return try io.lockDirectory(directory)
        }
        defer { lock.release() }
        return try body()
    }

    /// Installs `bytes` (a checkpoint image) with `authority` into `directory` (RS1–RS4).
    /// The caller holds the directory lock and has no engine open on it.
    @discardableResult
    public static func install(_ bytes: [UInt8], authority: Authority, directory: String, io: any StorageIO = PosixIO()) throws -> ImageFacts {
        let facts = try verify(bytes, history: authority.history)
        precondition(authority.role == .replica, "a re-seeded node is a replica")
        if let problem = authority.wellFormedProblem() { throw StorageError.authority("re-seed authority: \(problem)") }
        // An earlier committed re-seed is applied first: RS3 compares against its authority.
        try finishPending(directory: directory, io: io)
        if let current = try readAuthority(directory: directory, io: io) {
            guard current.nodeID == authority.nodeID else {
                throw StorageError.authority("\(directory) belongs to node \(current.nodeID), not \(authority.nodeID)")
            }
            guard authority.epoch >= current.epoch else {
                throw StorageError.authority("re-seeding would move epoch \(current.epoch) back to \(authority.epoch)")
            }
        }
        try wrap {
            let staging = directory + "/" + stagingName
            try io.createDirectory(staging)
            try io.replaceDurably(CheckpointFormat.fileName(lsn: facts.lsn), in: staging, with: bytes)
            try AuthorityFile.write(authority, directory: staging, io: io)  // synced, staging dir synced
            try io.rename(staging, to: directory + "/" + readyName)  // RS1: the commit point
            try io.syncDirectory(directory)
        }
        try finishPending(directory: directory, io: io)
        return facts
    }

    /// Recovery of an interrupted re-seed: discards an uncommitted staging dir, applies a
    /// committed one. Idempotent; a no-op for a clean directory. Call before opening an engine.
    public static func finishPending(directory: String, io: any StorageIO = PosixIO()) throws {
        try wrap {
            guard io.exists(directory) else { return }
            let staging = directory + "/" + stagingName
            if io.exists(staging) {
                try removeTree(staging, io: io)
                try io.syncDirectory(directory)
            }
            let ready = directory + "/" + readyName
            guard io.exists(ready) else { return }
            let staged = try io.list(ready)
            if let checkpoint = staged.first(where: { CheckpointFormat.lsn(ofFileName: $0) != nil }) {
                // RS4: the old state goes first; once the new checkpoint has moved in, this step
                // is done (a re-run after a crash must not remove the new checkpoint).
                for name in try io.list(directory) where WALFormat.segmentFirstLSN(name) != nil || CheckpointFormat.lsn(ofFileName: name) != nil {
                    try io.remove(directory + "/" + name)
                }
                try io.syncDirectory(directory)
                try io.rename(ready + "/" + checkpoint, to: directory + "/" + checkpoint)
            }
            if staged.contains(AuthorityFile.name) {
                try io.rename(ready + "/" + AuthorityFile.name, to: directory + "/" + AuthorityFile.name)
            }
            try io.syncDirectory(directory)
            try removeTree(ready, io: io)
            try io.syncDirectory(directory)
        }
    }

    private static func removeTree(_ path: String, io: any StorageIO) throws {
        for name in try io.list(path) { try io.remove(path + "/" + name) }
        try io.removeDirectory(path)
    }

    private static func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StorageIOError { throw StorageError.io(error) }
    }
}
