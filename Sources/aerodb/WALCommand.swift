// WALCommand.swift — `aerodb wal inspect|verify DIR [--format text|json]`.
//
// Both only read. `verify` exits 0 when the WAL and checkpoint are sound (a torn tail, which the
// next open truncates, is reported but is not damage), 2 on damage, which is printed with the
// rule id, segment, offset and LSN.

import AeroCore
import AeroStorage
import ArgumentParser
import Foundation

struct WALCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "Inspect and verify a data directory's write-ahead log.",
        subcommands: [WALInspect.self, WALVerify.self, WALCrashWriter.self]
    )
}

enum OutputFormat: String, ExpressibleByArgument { case text, json }

struct WALViewOptions: ParsableArguments {
    @Argument(help: "The data directory.") var directory: String
    @Option(help: "text or json.") var format: OutputFormat = .text
}

/// Scans and prints; returns whether damage was found.
func printWAL(_ options: WALViewOptions, verify: Bool) throws -> Bool {
    let report: WALScanReport
    let authority: Authority?
    do {
        (report, authority) = try StorageEngine.inspect(directory: options.directory)
    } catch {
        FileHandle.standardError.write(Data("aerodb: \(error)\n".utf8))
        throw ExitCode(2)
    }
    switch options.format {
    case .json:
        struct Output: Encodable {
            var directory: String
            var ok: Bool
            var authority: Authority?
            var wal: WALScanReport
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(Output(directory: options.directory, ok: report.damage == nil, authority: authority, wal: report))
        print(String(decoding: data, as: UTF8.self))
    case .text:
        print("data directory \(options.directory)")
        if let a = authority {
            print("authority: node \(a.nodeID), role \(a.role.rawValue), epoch \(a.epoch)" + (a.following.map { ", following \($0)" } ?? ""))
            for h in a.history { print("  epoch \(h.epoch): primary \(h.primary) from LSN \(h.startLSN)") }
        } else {
            print("authority: none")
        }
        if let c = report.checkpoint {
            print("checkpoint \(c.name): LSN \(c.lsn), epoch \(c.epoch), \(c.entries) keys, \(c.bytes) bytes")
        } else {
            print("checkpoint: none")
        }
        for s in report.segments {
            if s.beforeCheckpoint {
                print("segment \(s.name): covered by the checkpoint (not read)")
            } else {
                let range = s.lastLSN.map { "LSN \(s.firstLSN)...\($0)" } ?? "no records (first LSN \(s.firstLSN))"
                let epochs = s.firstEpoch.map { "epochs \($0)...\(s.lastEpoch!)" } ?? "no epochs"
                print("segment \(s.name): \(range), \(s.records) records, \(epochs), \(s.validBytes) bytes used of \(s.bytes)")
            }
        }
        print("last LSN \(report.lastLSN), last epoch \(report.lastEpoch)")
        if !report.temporaryFiles.isEmpty { print("temporary files (removed on open): \(report.temporaryFiles.joined(separator: ", "))") }
        if let t = report.tornTail { print("torn tail: \(t) (truncated on the next open)") }
        if let d = report.damage { print("DAMAGE: \(d)") } else if verify { print("verify: OK") }
    }
    return report.damage != nil
}

struct WALInspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show segments, LSN ranges, epochs, checkpoint and damage.")
    @OptionGroup var options: WALViewOptions
    func run() throws { _ = try printWAL(options, verify: false) }
}

struct WALVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Verify every record; exit 2 on damage.")
    @OptionGroup var options: WALViewOptions
    func run() throws {
        if try printWAL(options, verify: true) { throw ExitCode(2) }
    }
}
