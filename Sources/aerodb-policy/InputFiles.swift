// InputFiles.swift — reading the CLI's input files (and stdin) with a size bound and an
// error that names the file.
import Foundation

/// A file the CLI cannot read.
struct InputFileError: Error, CustomStringConvertible {
    let path: String
    let message: String
    var description: String { message }
}

enum InputFiles {
    /// Largest facts document accepted: a 1,000-node cluster is well under 1 MiB.
    static let factsBytesMax = 64 << 20
    /// The name `-` stands for standard input.
    static let standardInputName = "-"

    /// Reads `path` (or stdin for `-`) as UTF-8 text of at most `bytesMax` bytes.
    static func readText(path: String, bytesMax: Int) throws(InputFileError) -> String {
        let data: Data
        if path == standardInputName {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw InputFileError(path: path, message: "\(path): no such file")
            }
            guard !isDirectory.boolValue else {
                throw InputFileError(path: path, message: "\(path): is a directory, expected a file")
            }
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw InputFileError(path: path, message: "\(path): cannot be read")
            }
            data = contents
        }
        let name = path == standardInputName ? "standard input" : path
        guard data.count <= bytesMax else {
            throw InputFileError(path: path, message: "\(name): larger than \(bytesMax) bytes")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InputFileError(path: path, message: "\(name): not UTF-8 text")
        }
        return text
    }
}

/// Standard error, for diagnostics (stdout carries only the command's result).
enum StandardError {
    static func write(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}
