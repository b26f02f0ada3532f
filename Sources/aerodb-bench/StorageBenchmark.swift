// StorageBenchmark.swift — `aerodb-bench storage`: durable commits/s and commit latency at
// 1, 8 and 64 concurrent writers (100-byte values), AeroStorage and SQLite side by side in the
// same run on the same disk, then WAL replay speed and memory per stored key.
//
// SQLite runs in WAL mode with synchronous=FULL, one connection shared by the writer threads
// behind a mutex (its best case in one process: no busy-handler back-off between connections).
// Every commit on both sides is one autocommitted put of a new key, acknowledged only once
// durable. Figures are measured, never estimated (docs/benchmarks.md, "Storage").

import AeroCore
import AeroStorage
import ArgumentParser
import CSQLite
import Foundation

struct StorageBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "Durable commit throughput and latency vs SQLite; WAL replay MB/s; memory per key.",
        discussion: """
            Example (release build, as in docs/benchmarks.md):
              swift build -c release --scratch-path .build-storage --product aerodb-bench
              .build-storage/release/aerodb-bench storage --dir /tmp/aerodb-bench
            """
    )

    @Option(help: "Directory for the databases (same disk for both engines); emptied first.")
    var dir: String = NSTemporaryDirectory() + "aerodb-bench-storage"
    @Option(parsing: .upToNextOption, help: "Concurrent writer counts.")
    var writers: [Int] = [1, 8, 64]
    @Option(help: "Commits per writer count and engine.")
    var commits: Int = 2000
    @Option(help: "Value size in bytes.")
    var valueBytes: Int = 100
    @Option(help: "Records written for the replay measurement.")
    var replayRecords: Int = 200_000
    @Flag(help: "Only measure replay, reusing DIR/replay when it exists (profiling).")
    var replayOnly = false

    /// Bound: the harness never starts more threads than this.
    static let writersMax = 256

    func validate() throws {
        guard writers.allSatisfy({ $0 >= 1 && $0 <= Self.writersMax }) else { throw ValidationError("--writers must be 1...\(Self.writersMax)") }
        guard commits >= 1, valueBytes >= 1 else { throw ValidationError("--commits and --value-bytes must be positive") }
    }

    func run() throws {
        if replayOnly {
            try measureReplay(reuse: true)
            return
        }
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        print("storage benchmark: \(commits) commits per row, \(valueBytes)-byte values, directory \(dir)")
        print("| writers | engine | commits/s | p50 ms | p99 ms | fsyncs | ratio vs SQLite |")
        print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        for w in writers {
            let aero = try measureAero(writers: w)
            let lite = try measureSQLite(writers: w)
            print(String(format: "| %d | AeroStorage | %.0f | %.2f | %.2f | %d | %.2fx |", w, aero.rate, aero.p50, aero.p99, aero.fsyncs, aero.rate / lite.rate))
            print(String(format: "| %d | SQLite WAL, synchronous=FULL | %.0f | %.2f | %.2f | — | 1.00x |", w, lite.rate, lite.p50, lite.p99))
        }
        try measureReplay()
    }

    struct Row { var rate: Double; var p50: Double; var p99: Double; var fsyncs: Int }

    /// Runs `writers` threads, each doing its share of `commits` calls of `body`; returns rate and
    /// latency percentiles in ms.
    func drive(writers: Int, _ body: @escaping @Sendable (_ writer: Int, _ i: Int) throws -> Void) throws -> Row {
        let perWriter = max(1, commits / writers)
        let latencies = LatencySink()
        let group = DispatchGroup()
        let failures = LatencySink()
        let start = DispatchTime.now().uptimeNanoseconds
        for w in 0..<writers {
            group.enter()
            Thread {
                var mine: [UInt64] = []
                mine.reserveCapacity(perWriter)
                for i in 0..<perWriter {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    do { try body(w, i) } catch { failures.add([1]); break }
                    mine.append(DispatchTime.now().uptimeNanoseconds - t0)
                }
                latencies.add(mine)
                group.leave()
            }.start()
        }
        group.wait()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if !failures.values.isEmpty { throw ValidationError("\(failures.values.count) writers failed") }
        let sorted = latencies.values.sorted()
        func pct(_ p: Double) -> Double { Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6 }
        return Row(rate: Double(sorted.count) / elapsed, p50: pct(0.50), p99: pct(0.99), fsyncs: 0)
    }

    func value() -> [UInt8] { (0..<valueBytes).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) } }

    func measureAero(writers: Int) throws -> Row {
        let path = dir + "/aero-\(writers)"
        var options = StorageOptions()
        options.checkpointWALBytesTrigger = 0
        let engine = try StorageEngine.open(directory: path, options: options)
        defer { engine.close() }
        let v = value()
        var row = try drive(writers: writers) { w, i in
            var t = Transaction()
            t.put("w\(w)-\(i)", v)
            _ = try engine.commitBlocking(t)
        }
        row.fsyncs = Int(engine.countersSnapshot().fsyncs)
        return row
    }

    func measureSQLite(writers: Int) throws -> Row {
        let db = try SQLiteConnection(path: dir + "/sqlite-\(writers).db")
        try db.exec("PRAGMA journal_mode=WAL")
        try db.exec("PRAGMA synchronous=FULL")
        try db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
        let v = value()
        return try drive(writers: writers) { w, i in try db.put("w\(w)-\(i)", v) }
    }

    func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    func measureReplay(reuse: Bool = false) throws {
        let path = dir + "/replay"
        var options = StorageOptions()
        options.checkpointWALBytesTrigger = 0
        if !(reuse && FileManager.default.fileExists(atPath: path)) { try writeReplayData(path, options) }
        try printReplay(path, options)
    }

    func writeReplayData(_ path: String, _ options: StorageOptions) throws {
        let writer = try StorageEngine.open(directory: path, options: options)
        let v = value()
        let threads = 64
        let perThread = replayRecords / threads
        let group = DispatchGroup()
        for w in 0..<threads {
            group.enter()
            Thread {
                for i in 0..<perThread {
                    var t = Transaction()
                    t.put(String(format: "key-%02d-%08d", w, i), v)
                    _ = try? writer.commitBlocking(t)
                }
                group.leave()
            }.start()
        }
        group.wait()
        writer.close()
    }

    func printReplay(_ path: String, _ options: StorageOptions) throws {
        print("| replay run | records | WAL MB | seconds | MB/s | records/s |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        var rates: [Double] = []
        var memoryPerKey = 0.0
        for runIndex in 1...3 {
            let before = residentBytes()
            let engine = try StorageEngine.open(directory: path, options: options)
            let after = residentBytes()
            let r = engine.recoveryReport
            let seconds = Double(r.durationNs) / 1e9
            let mb = Double(r.bytesReplayed) / 1e6
            rates.append(mb / seconds)
            if runIndex == 1 { memoryPerKey = Double(after - before) / Double(max(1, engine.countersSnapshot().keys)) }
            print(String(format: "| %d | %d | %.1f | %.3f | %.0f | %.0f |", runIndex, r.recordsReplayed, mb, seconds, mb / seconds, Double(r.recordsReplayed) / seconds))
            engine.close()
        }
        print(String(format: "replay median: %.0f MB/s", rates.sorted()[1]))
        print(String(format: "memory per stored key (resident set growth while opening, %d-byte values, 15-byte keys): %.0f bytes", valueBytes, memoryPerKey))
    }
}

final class LatencySink: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [UInt64] = []
    func add(_ v: [UInt64]) {
        lock.lock()
        values += v
        lock.unlock()
    }
}

/// One SQLite connection used by many threads behind a mutex.
final class SQLiteConnection: @unchecked Sendable {
    private var db: OpaquePointer?
    private var insert: OpaquePointer?
    private let lock = NSLock()
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String) throws {
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            throw ValidationError("sqlite3_open_v2 \(path) failed")
        }
    }

    deinit {
        sqlite3_finalize(insert)
        sqlite3_close(db)
    }

    func exec(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw ValidationError("\(sql): \(String(cString: sqlite3_errmsg(db)))") }
    }

    func put(_ key: String, _ value: [UInt8]) throws {
        lock.lock()
        defer { lock.unlock() }
        if insert == nil {
            guard sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", -1, &insert, nil) == SQLITE_OK else {
                throw ValidationError("prepare: \(String(cString: sqlite3_errmsg(db)))")
            }
        }
        sqlite3_bind_text(insert, 1, key, -1, Self.transient)
        _ = value.withUnsafeBytes { sqlite3_bind_blob(insert, 2, $0.baseAddress, Int32($0.count), Self.transient) }
        let rc = sqlite3_step(insert)
        sqlite3_reset(insert)
        guard rc == SQLITE_DONE else { throw ValidationError("insert: \(String(cString: sqlite3_errmsg(db)))") }
    }
}
