// WALCrashWriter.swift — hidden `aerodb wal crash-writer`: the child process of the crash
// consistency test (Tests/AeroStorageTests/CrashConsistencyTests.swift).
//
// Commits forever from several threads. Transaction n of writer w in run r puts
// `r<r>/w<w>/<n>/a` and `.../b` (both all or nothing) and `last/w<w>` = n, and after each
// acknowledgement prints `ACK <r> <w> <n> <lsn>` and flushes stdout. The parent kills it
// with SIGKILL and checks every acknowledged write after recovery.

import AeroCore
import AeroStorage
import ArgumentParser
import Foundation

struct WALCrashWriter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-writer", abstract: "Crash-test child: commit in a loop, print each acknowledged LSN.",
        shouldDisplay: false)

    @Option var dataDir: String
    @Option(name: .customLong("run")) var runNumber: Int
    @Option var writers: Int = 4
    @Option var segmentBytes: UInt64 = 64 << 10
    @Option var checkpointBytes: UInt64 = 256 << 10

    func run() throws {
        var options = StorageOptions()
        options.segmentBytesMax = segmentBytes
        options.checkpointWALBytesTrigger = checkpointBytes
        let engine: StorageEngine
        do { engine = try StorageEngine.open(directory: dataDir, options: options) } catch {
            FileHandle.standardError.write(Data("aerodb: \(error)\n".utf8))
            throw ExitCode(2)
        }
        FileHandle.standardOutput.write(Data("READY \(engine.durableLSN)\n".utf8))
        let output = NSLock()
        let runNumber = self.runNumber
        let group = DispatchGroup()
        for w in 0..<writers {
            group.enter()
            Thread {
                var n = 0
                while true {
                    var txn = Transaction()
                    let value = Array("\(runNumber):\(w):\(n)".utf8)
                    txn.put("r\(runNumber)/w\(w)/\(n)/a", value)
                    txn.put("r\(runNumber)/w\(w)/\(n)/b", value)
                    txn.put("last/w\(w)", Array(String(n).utf8))
                    guard let lsn = try? engine.commitBlocking(txn) else { break }
                    // One write(2) per line, so a kill never leaves half a line that parses.
                    output.lock()
                    FileHandle.standardOutput.write(Data("ACK \(runNumber) \(w) \(n) \(lsn)\n".utf8))
                    output.unlock()
                    n += 1
                }
                group.leave()
            }.start()
        }
        group.wait()
        engine.close()
        throw ExitCode(3)
    }
}
