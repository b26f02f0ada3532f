// PolicyLoader.swift — reads policy files from disk, before any decision. A decision never
// reads files; it receives `PolicySource` values.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A policy path that cannot be used.
public struct PolicyLoadError: Error, Equatable, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

public enum PolicyLoader {
    /// A policy file larger than this is refused: policies are small, and the parser runs
    /// in C where no budget hook fires.
    public static let policyBytesMax = 256 << 10
    /// A directory with more policy files than this is refused (bounds a decision's work).
    public static let policiesPerDirectoryMax = 256

    /// Language-server definition files (`---@meta`, such as policies/aerodb-facts.d.lua)
    /// live beside the policies but are not policies: a directory scan skips them (a path
    /// that names one explicitly still loads it, and it then fails as a policy would).
    public static let definitionFileSuffix = ".d.lua"

    /// Files and directories; a directory contributes its `*.lua` files (not recursive,
    /// without `*.d.lua` definition files), sorted by name. Throws naming the path when it is missing, unreadable or not UTF-8,
    /// or when two policies share a name.
    public static func load(paths: [String]) throws(PolicyLoadError) -> [PolicySource] {
        var sources: [PolicySource] = []
        var pathByName: [String: String] = [:]
        for path in paths {
            for file in try policyFiles(at: path) {
                let source = try read(file)
                if let earlier = pathByName[source.name] {
                    throw PolicyLoadError(path: file,
                                          message: "policy name \"\(source.name)\" is already used by \(earlier)")
                }
                pathByName[source.name] = file
                sources.append(source)
            }
        }
        return sources
    }

    /// The policy name of a file: its last path component without ".lua".
    public static func name(ofPath path: String) -> String {
        let last = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
        return last.hasSuffix(".lua") ? String(last.dropLast(4)) : last
    }

    private static func policyFiles(at path: String) throws(PolicyLoadError) -> [String] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw PolicyLoadError(path: path, message: "no such file or directory")
        }
        if (info.st_mode & S_IFMT) != S_IFDIR { return [path] }
        guard let directory = opendir(path) else {
            throw PolicyLoadError(path: path, message: "cannot read the directory")
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".lua"), name.count > 4, !name.hasPrefix("."),
                  !name.hasSuffix(definitionFileSuffix) else { continue }
            names.append(name)
            if names.count > policiesPerDirectoryMax {
                throw PolicyLoadError(path: path,
                                      message: "more than \(policiesPerDirectoryMax) policy files")
            }
        }
        let base = path.hasSuffix("/") ? path : path + "/"
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { base + $0 }
    }

    private static func read(_ path: String) throws(PolicyLoadError) -> PolicySource {
        guard let file = fopen(path, "rb") else {
            throw PolicyLoadError(path: path, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
            if bytes.count > policyBytesMax {
                throw PolicyLoadError(path: path, message: "larger than \(policyBytesMax) bytes")
            }
            if count < chunk.count {
                if ferror(file) != 0 { throw PolicyLoadError(path: path, message: "read error") }
                break
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PolicyLoadError(path: path, message: "not valid UTF-8")
        }
        return PolicySource(name: name(ofPath: path), path: path, text: text)
    }
}
