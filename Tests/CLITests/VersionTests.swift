import Foundation
import Testing
import AeroCore
import AeroTestSupport

/// Locates a built executable next to the test bundle (SwiftPM puts both in the same
/// products directory).
func productExecutable(_ name: String) -> URL {
    var directory = Bundle.main.bundleURL
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        directory = bundle.bundleURL.deletingLastPathComponent()
    }
    let candidate = directory.appendingPathComponent(name)
    if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
}

@Suite struct VersionTests {
    @Test(arguments: ["aerodb", "aerodb-policy"])
    func executablesReportTheEngineVersion(_ name: String) throws {
        let process = Process()
        process.executableURL = productExecutable(name)
        process.arguments = ["--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        #expect(ChildProcess.waitOrKill(process) == ChildExit(status: 0, signaled: false))
        #expect(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == AeroVersion.string)
    }
}
