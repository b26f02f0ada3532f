// ProcessRun.swift — run a program to its end and keep what it printed: the one copy of the
// "start, read both pipes to the end, wait (bounded)" sequence the process tests share.
import Foundation

/// How a finished child ended and what it wrote.
public struct ProcessRun: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Runs `executable` with `arguments` (in `directory` when given) until it exits, bounded
    /// by `timeoutMs` (then killed). Both pipes are read to the end before the wait, so a full
    /// pipe cannot block the child.
    public static func run(_ executable: URL, _ arguments: [String], directory: URL? = nil,
                           timeoutMs: Int = ChildProcess.waitMsMax) throws -> ProcessRun {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        let exit = ChildProcess.waitOrKill(process, timeoutMs: timeoutMs)
        return ProcessRun(status: exit.status, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}
