// Repository.swift — where the tests find the repository's files and the built executables.
//
// One copy for every test target (the finder was copied three times before): tests that read
// docs or sources, and tests that run `aerodb`, `aerodb-policy` or the policy worker as real
// processes, take their paths from here.
import Foundation

public enum Repository {
    /// The repository root, from this file's path (Tests/AeroTestSupport/Repository.swift).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A file of the repository, by its path from the root.
    public static func url(_ relativePath: String) -> URL { root.appendingPathComponent(relativePath) }

    /// The text of a file of the repository, by its path from the root.
    public static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: url(relativePath), encoding: .utf8)
    }

    /// Every file under `directory` (a path from the root) whose name ends with one of
    /// `suffixes`, as paths from the root, sorted. Hidden directories are skipped.
    public static func files(under directory: String, suffixes: [String]) throws -> [String] {
        let base = url(directory)
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles]) else {
            return []
        }
        var found: [String] = []
        for case let file as URL in walker where suffixes.contains(where: { file.lastPathComponent.hasSuffix($0) }) {
            found.append(directory + "/" + file.path.dropFirst(base.path.count + 1))
        }
        return found.sorted()
    }
}

/// Locates a built executable next to the test bundle (SwiftPM puts both in the same products
/// directory).
public func builtExecutable(_ name: String) -> URL {
    var directory = Bundle.main.bundleURL
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        directory = bundle.bundleURL.deletingLastPathComponent()
    }
    let candidate = directory.appendingPathComponent(name)
    if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
}
