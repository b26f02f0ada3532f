// KVCommand.swift — `aerodb kv get|put|delete|scan --data-dir DIR`: embedded use from the shell.
//
// Exit codes: 0 done; 1 `get` of a missing key; 2 the data directory cannot be used (damage
// found by recovery, a refused write, an I/O error), with the error on stderr.
// `put` and `delete` print the LSN only once the change is durable.

import AeroCore
import AeroStorage
import ArgumentParser
import Foundation

struct KVCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Read and write a data directory directly (embedded use).",
        subcommands: [KVGet.self, KVPut.self, KVDelete.self, KVScan.self]
    )
}

struct DataDirOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory (created if missing).")
    var dataDir: String
}

/// Opens the engine, runs `body`, closes it; maps storage errors to exit code 2.
func withEngine<T>(_ options: DataDirOptions, _ body: (StorageEngine) throws -> T) throws -> T {
    let engine: StorageEngine
    do {
        engine = try StorageEngine.open(directory: options.dataDir)
    } catch {
        FileHandle.standardError.write(Data("aerodb: \(error)\n".utf8))
        throw ExitCode(2)
    }
    defer { engine.close() }
    if let torn = engine.recoveryReport.tornTail {
        FileHandle.standardError.write(Data("aerodb: recovery truncated a torn WAL tail: \(torn)\n".utf8))
    }
    do {
        return try body(engine)
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("aerodb: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

struct KVGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Print a key's value (exit 1 when absent).")
    @OptionGroup var options: DataDirOptions
    @Argument(help: "The key.") var key: String

    func run() throws {
        try withEngine(options) { engine in
            guard let value = engine.get(key) else {
                FileHandle.standardError.write(Data("aerodb: key \"\(key)\" not found\n".utf8))
                throw ExitCode(1)
            }
            FileHandle.standardOutput.write(Data(value + [0x0A]))
        }
    }
}

struct KVPut: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put", abstract: "Store a value; prints its LSN once durable.")
    @OptionGroup var options: DataDirOptions
    @Argument(help: "The key.") var key: String
    @Argument(help: "The value (UTF-8 text).") var value: String

    func run() throws {
        try withEngine(options) { engine in
            var txn = Transaction()
            txn.put(key, Array(value.utf8))
            print(try engine.commitBlocking(txn))
        }
    }
}

struct KVDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a key; prints the LSN once durable.")
    @OptionGroup var options: DataDirOptions
    @Argument(help: "The key.") var key: String

    func run() throws {
        try withEngine(options) { engine in
            var txn = Transaction()
            txn.delete(key)
            print(try engine.commitBlocking(txn))
        }
    }
}

struct KVScan: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scan", abstract: "List keys with a prefix: key<TAB>value per line.")
    @OptionGroup var options: DataDirOptions
    @Argument(help: "The key prefix (empty: all keys).") var prefix: String = ""
    @Option(help: "At most this many keys; when more match, standard error says so.") var limit: Int = 1000

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1, got \(limit)") }
    }

    func run() throws {
        try withEngine(options) { engine in
            let snapshot = engine.snapshot()
            // One key past the limit tells whether the listing is complete.
            let entries = snapshot.scan(prefix: prefix, limit: min(limit, Int.max - 1) + 1)
            for (key, value) in entries.prefix(limit) {
                print("\(key)\t\(String(decoding: value, as: UTF8.self))")
            }
            if entries.count > limit {
                FileHandle.standardError.write(Data("aerodb kv scan: stopped after --limit \(limit) keys; more keys match the prefix \"\(prefix)\" (raise --limit to list them)\n".utf8))
            }
        }
    }
}
