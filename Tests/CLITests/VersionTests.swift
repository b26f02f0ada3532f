import Foundation
import Testing
import AeroCore
import AeroTestSupport

@Suite struct VersionTests {
    @Test(arguments: ["aerodb", "aerodb-policy"])
    func executablesReportTheEngineVersion(_ name: String) throws {
        let process = Process()
        process.executableURL = builtExecutable(name)
        process.arguments = ["--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        #expect(ChildProcess.waitOrKill(process) == ChildExit(status: 0, signaled: false))
        #expect(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == AeroVersion.string)
    }
}
