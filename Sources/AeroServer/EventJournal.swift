// EventJournal.swift — the structured event journal: one JSON object per line, appended to
// `<data_dir>/events.jsonl`.
//
// Line shape (keys sorted, canonical JSON, no newline inside):
//
//     {"event":"refusal","fields":{...},"node":"n1","seq":17,"ts_ms":1764201600123}
//
// Rules
// 1. Bounded lines: a line is at most `lineBytesMax` bytes including its newline. An event whose
//    line would be longer keeps `event`, `node`, `seq`, `ts_ms` and the `rule` field, and has its
//    other fields replaced by `{"rule": ..., "truncated_bytes": N}`: a refusal never loses its
//    rule id, and the journal never holds a partial line.
// 2. One write(2) per line on an O_APPEND descriptor, under a lock: lines never interleave.
// 3. fsync policy: events that record authority or a refusal (`Durability.sync`: refusals,
//    epoch changes, promotions, fencing) are fsync'd before `append` returns, so a refusal the
//    client saw is in the journal after a crash. Other events (`Durability.lazy`: start, stop,
//    connections) are written at once and become durable with the next synced event or on
//    `close()`; a crash may lose the last few of them, never a synced one before them.
// 4. After a failed write or fsync the journal is failed (sticky): every later append throws,
//    because a journal with a hole is worse than one that says it stopped.
// 5. `seq` increases by one per event within one process; on open it continues from the number
//    of complete lines already in the file, so sequence numbers are unique per file.
// 6. No append fails unseen: every failed append (a failed write or fsync, an append to a failed
//    or closed journal) is counted in `failedAppends`, exported as
//    aerodb_journal_write_failures_total. Callers whose request must fail with the journal use
//    `append` (it throws); an event that records an action already taken and must not undo or
//    fail it uses `record`, which returns the error instead of dropping it.

import AeroCore
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public struct JournalError: Error, Equatable, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "event journal \(path): \(message)" }
}

public final class EventJournal: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`.

    public enum Durability: Sendable {
        /// fsync before returning (rule 3).
        case sync
        /// Written now, fsync'd with the next synced event or on close.
        case lazy
    }

    public static let fileName = "events.jsonl"
    /// Default bound of one line (BudgetsConfig.journalLineBytesMax).
    public static let lineBytesMaxDefault = 64 * 1024
    /// The smallest allowed bound: room for the envelope and a rule id.
    public static let lineBytesMin = 512
    /// Event names are short identifiers chosen in code ("refusal", "epoch_changed").
    public static let eventNameBytesMax = 64

    public let path: String
    public let node: NodeID
    public let lineBytesMax: Int
    private let clockMs: @Sendable () -> UInt64
    private let lock = NSLock()
    private var fd: Int32
    private var seq: UInt64
    private var failure: JournalError?
    private var failedAppendsCount: UInt64 = 0

    /// Opens (creating if needed) the journal in `directory`. `clockMs` gives wall-clock
    /// milliseconds since 1970 (a seam for tests).
    public init(directory: String, node: NodeID, lineBytesMax: Int = EventJournal.lineBytesMaxDefault,
                clockMs: @escaping @Sendable () -> UInt64 = EventJournal.wallClockMs) throws(JournalError) {
        precondition(lineBytesMax >= Self.lineBytesMin, "journal lines need at least \(Self.lineBytesMin) bytes")
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        self.path = path
        self.node = node
        self.lineBytesMax = lineBytesMax
        self.clockMs = clockMs
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw JournalError(path: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        self.fd = fd
        // Continue the sequence after the complete lines already present (rule 5). Only a regular
        // file is read: a journal path that is a device (a test's /dev/full) has no lines, and
        // reading one could never end.
        var status = stat()
        let regular = fstat(fd, &status) == 0 && (status.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG)
        let existing = regular ? ((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()) : Data()
        self.seq = UInt64(existing.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) })
    }

    deinit {
        if fd >= 0 { _ = fsync(fd); closeDescriptor(fd) }
    }

    public static let wallClockMs: @Sendable () -> UInt64 = {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    /// Appends one event. Returns its sequence number.
    @discardableResult
    public func append(_ event: String, fields: [String: JSONValue], durability: Durability) throws(JournalError) -> UInt64 {
        precondition(!event.isEmpty && event.utf8.count <= Self.eventNameBytesMax, "event name \"\(event)\"")
        lock.lock()
        defer { lock.unlock() }
        if let failure {
            failedAppendsCount += 1
            throw failure
        }
        guard fd >= 0 else {
            failedAppendsCount += 1
            throw JournalError(path: path, message: "closed")
        }
        let number = seq + 1
        let line = render(event: event, fields: fields, seq: number, tsMs: clockMs())
        precondition(line.utf8.count <= lineBytesMax, "journal line over its bound after truncation")
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            return try fail("write of \(bytes.count) bytes returned \(written): \(String(cString: strerror(errno)))")
        }
        if durability == .sync, fsync(fd) != 0 {
            return try fail("fsync failed: \(String(cString: strerror(errno)))")
        }
        seq = number
        return number
    }

    /// A refusal: its rule id, message and explanation, fsync'd.
    @discardableResult
    public func appendRefusal(_ refusal: Refusal, context: [String: JSONValue] = [:]) throws(JournalError) -> UInt64 {
        var fields = context
        fields["rule"] = .string(refusal.explanation.rule)
        fields["code"] = .string(refusal.code.rawValue)
        fields["message"] = .string(refusal.message)
        fields["explanation"] = refusal.explanation.json
        return try append("refusal", fields: fields, durability: .sync)
    }

    /// fsyncs and closes. Later appends throw.
    public func close() throws(JournalError) {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { return }
        let synced = fsync(fd) == 0
        closeDescriptor(fd)
        fd = -1
        if !synced { throw JournalError(path: path, message: "fsync on close failed: \(String(cString: strerror(errno)))") }
    }

    private func fail(_ message: String) throws(JournalError) -> UInt64 {
        let error = JournalError(path: path, message: message)
        failure = error
        failedAppendsCount += 1
        throw error
    }

    /// Appends failed so far (rule 6), whoever asked.
    public var failedAppends: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return failedAppendsCount
    }

    /// Appends an event that records an action already taken (a fence made, a peer refused): the
    /// action stands when the journal fails. The failure is not dropped: it is counted (rule 6)
    /// and returned, for a caller that can say more (nil: the event was written).
    @discardableResult
    public func record(_ event: String, fields: [String: JSONValue], durability: Durability) -> JournalError? {
        do {
            try append(event, fields: fields, durability: durability)
            return nil
        } catch {
            return error
        }
    }

    /// `appendRefusal` for a refusal that is already answered or acted on (see `record`).
    @discardableResult
    public func recordRefusal(_ refusal: Refusal, context: [String: JSONValue] = [:]) -> JournalError? {
        do {
            try appendRefusal(refusal, context: context)
            return nil
        } catch {
            return error
        }
    }

    /// The line for an event, truncated per rule 1.
    func render(event: String, fields: [String: JSONValue], seq: UInt64, tsMs: UInt64) -> String {
        func line(_ fields: [String: JSONValue]) -> String {
            let object: JSONValue = .object([
                "event": .string(event), "node": .string(node.rawValue), "seq": .integer(Int64(seq)),
                "ts_ms": .integer(Int64(tsMs)), "fields": .object(fields),
            ])
            return object.canonicalJSON + "\n"
        }
        let full = line(fields)
        if full.utf8.count <= lineBytesMax { return full }
        var kept: [String: JSONValue] = ["truncated_bytes": .integer(Int64(full.utf8.count))]
        if let rule = fields["rule"] { kept["rule"] = rule }
        let short = line(kept)
        if short.utf8.count <= lineBytesMax { return short }
        // Only a pathological rule id or event name gets here: keep the envelope alone.
        return line(["truncated_bytes": .integer(Int64(full.utf8.count))])
    }
}

private func closeDescriptor(_ fd: Int32) {
    #if canImport(Glibc)
        _ = Glibc.close(fd)
    #else
        _ = Darwin.close(fd)
    #endif
}
