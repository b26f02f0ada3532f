import AeroCore
import AeroTestSupport
@testable import AeroStorage
import Foundation
import Testing

/// A fresh directory under the system temp dir, removed by the caller via `defer`.
func temporaryDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "aerodb-storage-\(name)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func put(_ pairs: (String, String)...) -> Transaction {
    var t = Transaction()
    for (k, v) in pairs { t.put(k, Array(v.utf8)) }
    return t
}

func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

func simOptions(_ fs: SimulatedFileSystem, segmentBytes: UInt64 = 64 << 20, checkpointBytes: UInt64 = 0) -> StorageOptions {
    var o = StorageOptions()
    o.io = fs
    o.segmentBytesMax = segmentBytes
    o.checkpointWALBytesTrigger = checkpointBytes
    return o
}

