// SimulatedFileSystem.swift — an in-memory StorageIO (AeroStorage's seam; the storage and
// server tests share it) that models what survives a crash, and
// injects faults at a chosen write or sync.
//
// Model: a file (inode) has `current` bytes (what reads see) and `durable` bytes (what survives a
// crash); `sync()` copies current to durable. Names map to inodes in a `current` namespace and a
// `durable` namespace; `syncDirectory` copies the directory's current entries to durable.
// `crashImage()` is the file system a restarted process sees: durable names, durable bytes.
//
// Faults (one per run, at the N-th write or sync counted from 1 over all files):
//   lostUnsynced(n)  the process dies right after write n: unsynced writes are lost
//   tornWrite(n)     write n reaches the disk only in part (a prefix, after all earlier writes to
//                    that file), then the process dies
//   shortWrite(n)    write n writes only half of its bytes and says so (the caller must continue)
//   bitFlip(n)       write n lands with one bit flipped, silently
//   failSync(n)      sync n (of a file or a directory) fails with EIO; the data is not durable
// After a crash every call throws, as the dead process would make none.

import AeroStorage
import Foundation
import Glibc

public final class SimulatedFileSystem: StorageIO, @unchecked Sendable {
    public enum Fault: Equatable, CustomStringConvertible {
        case none
        case lostUnsynced(Int)
        case tornWrite(Int)
        case shortWrite(Int)
        case bitFlip(Int)
        case failSync(Int)

        public var description: String {
            switch self {
            case .none: return "none"
            case .lostUnsynced(let n): return "lost-unsynced@write\(n)"
            case .tornWrite(let n): return "torn@write\(n)"
            case .shortWrite(let n): return "short@write\(n)"
            case .bitFlip(let n): return "bitflip@write\(n)"
            case .failSync(let n): return "failed-sync@sync\(n)"
            }
        }
    }

    public final class Inode {
        public var current: [UInt8] = []
        public var durable: [UInt8] = []
    }

    private let lock = NSLock()
    private var names: [String: Inode] = [:]
    private var durableNames: [String: Inode] = [:]
    private var directories: Set<String> = []
    public private(set) var writes = 0
    public private(set) var syncs = 0
    public private(set) var crashed = false
    public private(set) var faultFired = false
    public var fault: Fault = .none
    /// Chooses the torn prefix length and the flipped bit.
    public var random = SeededRandom(seed: 1)

    public init() {}

    private func dead(_ op: String, _ path: String) -> StorageIOError {
        StorageIOError(operation: "\(op) (simulated crash)", path: path, errno: EIO)
    }

    /// The file system after a crash: durable names and bytes only.
    public func crashImage() -> SimulatedFileSystem {
        lock.lock()
        defer { lock.unlock() }
        let image = SimulatedFileSystem()
        image.directories = directories
        for (path, inode) in durableNames {
            let copy = Inode()
            copy.current = inode.durable
            copy.durable = inode.durable
            image.names[path] = copy
            image.durableNames[path] = copy
        }
        return image
    }

    /// Marks the process dead (for the harness: a crash at the end of a workload).
    public func crash() {
        lock.lock()
        crashed = true
        lock.unlock()
    }

    public func bytes(_ path: String) -> [UInt8]? {
        lock.lock()
        defer { lock.unlock() }
        return names[path]?.current
    }

    /// Replaces a file's bytes, durably (for tests that damage files on purpose).
    public func setBytes(_ path: String, _ bytes: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        let inode = names[path] ?? Inode()
        inode.current = bytes
        inode.durable = bytes
        names[path] = inode
        durableNames[path] = inode
    }

    public func open(_ path: String, create: Bool) throws -> any StorageFile {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("open", path) }
        if let inode = names[path] { return SimulatedFile(fs: self, path: path, inode: inode) }
        guard create else { throw StorageIOError(operation: "open", path: path, errno: ENOENT) }
        let inode = Inode()
        names[path] = inode
        return SimulatedFile(fs: self, path: path, inode: inode)
    }

    public func exists(_ path: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return names[path] != nil || directories.contains(path)
    }

    public func list(_ directory: String) throws -> [String] {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("list", directory) }
        let prefix = directory + "/"
        return names.keys.filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/") }
            .map { String($0.dropFirst(prefix.count)) }
    }

    public func createDirectory(_ path: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("mkdir", path) }
        directories.insert(path)
    }

    public func rename(_ from: String, to: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("rename", from) }
        guard let inode = names.removeValue(forKey: from) else { throw StorageIOError(operation: "rename", path: from, errno: ENOENT) }
        names[to] = inode
    }

    public func remove(_ path: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("unlink", path) }
        guard names.removeValue(forKey: path) != nil else { throw StorageIOError(operation: "unlink", path: path, errno: ENOENT) }
    }

    public func removeDirectory(_ path: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("rmdir", path) }
        guard directories.remove(path) != nil else { throw StorageIOError(operation: "rmdir", path: path, errno: ENOENT) }
    }

    public func syncDirectory(_ directory: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("fsync directory", directory) }
        syncs += 1
        if case .failSync(let n) = fault, n == syncs {
            faultFired = true
            throw StorageIOError(operation: "fsync directory (injected)", path: directory, errno: EIO)
        }
        let prefix = directory + "/"
        for path in durableNames.keys where path.hasPrefix(prefix) && names[path] == nil { durableNames[path] = nil }
        for (path, inode) in names where path.hasPrefix(prefix) { durableNames[path] = inode }
    }

    // Called by SimulatedFile with the lock not held.
    fileprivate func write(_ inode: Inode, path: String, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("pwrite", path) }
        writes += 1
        var data = [UInt8](bytes)
        var count = data.count
        switch fault {
        case .shortWrite(let n) where n == writes && data.count > 1:
            faultFired = true
            count = data.count / 2
            data = Array(data.prefix(count))
        case .bitFlip(let n) where n == writes && !data.isEmpty:
            faultFired = true
            let bit = random.next(below: data.count * 8)
            data[bit / 8] ^= UInt8(1 << (bit % 8))
        case .tornWrite(let n) where n == writes:
            faultFired = true
            let keep = random.next(below: data.count)
            Self.apply(Array(data.prefix(keep)), to: &inode.current, at: Int(offset))
            inode.durable = inode.current
            crashed = true
            throw dead("pwrite (torn)", path)
        default:
            break
        }
        Self.apply(data, to: &inode.current, at: Int(offset))
        if case .lostUnsynced(let n) = fault, n == writes {
            faultFired = true
            crashed = true
        }
        return count
    }

    public static func apply(_ data: [UInt8], to content: inout [UInt8], at offset: Int) {
        if content.count < offset + data.count { content += [UInt8](repeating: 0, count: offset + data.count - content.count) }
        content.replaceSubrange(offset..<offset + data.count, with: data)
    }

    fileprivate func sync(_ inode: Inode, path: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("fsync", path) }
        syncs += 1
        if case .failSync(let n) = fault, n == syncs {
            faultFired = true
            throw StorageIOError(operation: "fsync (injected)", path: path, errno: EIO)
        }
        inode.durable = inode.current
    }

    fileprivate func read(_ inode: Inode, path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("pread", path) }
        let start = min(Int(offset), inode.current.count)
        return Array(inode.current[start..<min(start + count, inode.current.count)])
    }

    fileprivate func size(_ inode: Inode, path: String) throws -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("fstat", path) }
        return UInt64(inode.current.count)
    }

    fileprivate func truncate(_ inode: Inode, path: String, to size: UInt64) throws {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw dead("ftruncate", path) }
        if inode.current.count > Int(size) { inode.current.removeLast(inode.current.count - Int(size)) } else {
            inode.current += [UInt8](repeating: 0, count: Int(size) - inode.current.count)
        }
    }
}

final class SimulatedFile: StorageFile {
    let path: String
    private let fs: SimulatedFileSystem
    private let inode: SimulatedFileSystem.Inode

    init(fs: SimulatedFileSystem, path: String, inode: SimulatedFileSystem.Inode) {
        self.fs = fs
        self.path = path
        self.inode = inode
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int { try fs.write(inode, path: path, bytes, at: offset) }
    func read(at offset: UInt64, count: Int) throws -> [UInt8] { try fs.read(inode, path: path, at: offset, count: count) }
    func size() throws -> UInt64 { try fs.size(inode, path: path) }
    func truncate(to size: UInt64) throws { try fs.truncate(inode, path: path, to: size) }
    func sync() throws { try fs.sync(inode, path: path) }
    func close() {}
}

