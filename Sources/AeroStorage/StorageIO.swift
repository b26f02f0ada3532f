// StorageIO.swift — the file-system seam (AeroDB's VFS, after SQLite's sqlite3_vfs).
//
// Every byte AeroStorage reads or writes goes through `StorageIO` and `StorageFile`, so tests
// replace the real file system with one that tears writes, shortens them, loses what was not
// synced, flips bits and fails fsyncs (Tests/AeroStorageTests/SimulatedFileSystem.swift).
//
// Contract the engine relies on, and which `PosixIO` gives on Linux:
// 1. `write` may write fewer bytes than asked (a short write); it returns the count and the
//    caller continues. It throws on an I/O error.
// 2. Nothing written is durable until `sync()` of the file returned without throwing.
// 3. A created, renamed or removed name is durable only after `syncDirectory` of its directory.
// 4. A failed `sync()` leaves the file's durable contents unknown: the caller must treat it as
//    fatal for that file and never retry the sync as if it could succeed (PostgreSQL, 2018).
// 5. Every whole-file replacement (the authority file, checkpoints, a re-seed's staged files,
//    the server's epoch promise and decision records) goes through `replaceDurably`: temp file,
//    write, sync, rename, directory sync. A crash at any step leaves the old file or the new
//    one whole, never a mix (at most a stale `<name>.tmp`, which the engine's open removes).

import Glibc  // Linux is the supported platform (README); the seam keeps a port to one file.

/// An operating error from the file system, naming the call and the path.
public struct StorageIOError: Error, Sendable, CustomStringConvertible, Equatable {
    public let operation: String
    public let path: String
    public let errno: Int32
    public init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }
    public var description: String {
        "\(operation) failed on \(path): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// An open file. Used by one thread at a time (the engine serialises access).
public protocol StorageFile: AnyObject {
    var path: String { get }
    /// Writes up to `bytes.count` bytes at `offset`; returns how many were written (≥ 1).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int
    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    func read(at offset: UInt64, count: Int) throws -> [UInt8]
    func size() throws -> UInt64
    func truncate(to size: UInt64) throws
    /// Makes every completed write durable (fsync/fdatasync).
    func sync() throws
    func close()
}

/// The file-system operations the engine uses. Paths are absolute or relative to the process.
public protocol StorageIO: Sendable {
    /// Opens (and with `create`, creates empty if missing) a file for reading and writing.
    func open(_ path: String, create: Bool) throws -> any StorageFile
    func exists(_ path: String) -> Bool
    /// Names in `directory` (no "." or ".."), in no particular order.
    func list(_ directory: String) throws -> [String]
    func createDirectory(_ path: String) throws
    /// Atomically replaces `to` by `from` (rename(2)).
    func rename(_ from: String, to: String) throws
    func remove(_ path: String) throws
    /// Removes an empty directory (rmdir(2)).
    func removeDirectory(_ path: String) throws
    /// Makes creates, renames and removes in `directory` durable.
    func syncDirectory(_ directory: String) throws
    /// Takes an exclusive lock on the data directory for this process (released by
    /// `DirectoryLock.release()` or when the process dies); throws EWOULDBLOCK when held.
    func lockDirectory(_ directory: String) throws -> any DirectoryLock
}

/// A held data-directory lock.
public protocol DirectoryLock: AnyObject {
    func release()
}

/// A lock that excludes nothing, for file systems that live in one process (test doubles).
public final class NoDirectoryLock: DirectoryLock {
    public init() {}
    public func release() {}
}

extension StorageIO {
    public func lockDirectory(_ directory: String) throws -> any DirectoryLock { NoDirectoryLock() }

    /// The real file system's rmdir, for test doubles that wrap `PosixIO`; an in-memory file
    /// system implements its own.
    public func removeDirectory(_ path: String) throws { try PosixIO().removeDirectory(path) }

    /// Replaces (or creates) `directory/name` by `bytes`, atomically and durably (contract 5):
    /// writes `name.tmp`, syncs it, renames it over `name`, syncs `directory`. Throws
    /// `StorageIOError`; until the rename the old file is untouched, so a failed write or sync
    /// leaves it in place.
    public func replaceDurably(_ name: String, in directory: String, with bytes: [UInt8]) throws {
        precondition(!name.isEmpty && !name.contains("/"), "replaceDurably takes a file name in the directory, got \(name)")
        let path = directory + "/" + name
        let temp = path + ".tmp"
        let file = try open(temp, create: true)
        defer { file.close() }
        try file.truncate(to: 0)
        try file.writeAll(bytes, at: 0)
        try file.sync()
        try rename(temp, to: path)
        try syncDirectory(directory)
    }
}

extension StorageFile {
    /// Writes all of `bytes`, continuing after short writes.
    func writeAll(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = try write(UnsafeRawBufferPointer(rebasing: raw[done...]), at: offset + UInt64(done))
                precondition(n > 0 && n <= raw.count - done, "StorageFile.write returned \(n)")
                done += n
            }
        }
    }

    /// Reads the whole file.
    func readAll() throws -> [UInt8] {
        let total = try size()
        return try read(at: 0, count: Int(total))
    }
}

/// The real file system (POSIX calls, no buffering).
public struct PosixIO: StorageIO {
    public init() {}

    /// flock(2) on `<directory>/LOCK`: one process per data directory.
    public func lockDirectory(_ directory: String) throws -> any DirectoryLock {
        let path = directory + "/LOCK"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw StorageIOError(operation: "open", path: path, errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            Glibc.close(fd)
            throw StorageIOError(operation: "flock (another process has this data directory open)", path: path, errno: e)
        }
        return PosixDirectoryLock(fd: fd)
    }

    public func open(_ path: String, create: Bool) throws -> any StorageFile {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = Glibc.open(path, flags, 0o644)
        if fd < 0 { throw StorageIOError(operation: "open", path: path, errno: errno) }
        return PosixFile(path: path, fd: fd)
    }

    public func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public func list(_ directory: String) throws -> [String] {
        guard let dir = opendir(directory) else {
            throw StorageIOError(operation: "opendir", path: directory, errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func createDirectory(_ path: String) throws {
        if mkdir(path, 0o755) == 0 {
            // A new directory's own name is durable only once its parent is synced (3): else a
            // power loss could take a new data dir, and what was acknowledged in it, away.
            try syncDirectory(Self.parentDirectory(of: path))
            return
        }
        if errno != EEXIST { throw StorageIOError(operation: "mkdir", path: path, errno: errno) }
    }

    /// "/a/b" -> "/a", "/a" -> "/", "a" -> ".", "a/b/" -> "a".
    static func parentDirectory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    public func rename(_ from: String, to: String) throws {
        if Glibc.rename(from, to) != 0 { throw StorageIOError(operation: "rename", path: from, errno: errno) }
    }

    public func remove(_ path: String) throws {
        if unlink(path) != 0 { throw StorageIOError(operation: "unlink", path: path, errno: errno) }
    }

    public func removeDirectory(_ path: String) throws {
        if rmdir(path) != 0 { throw StorageIOError(operation: "rmdir", path: path, errno: errno) }
    }

    public func syncDirectory(_ directory: String) throws {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw StorageIOError(operation: "open directory", path: directory, errno: errno) }
        defer { Glibc.close(fd) }
        if fsync(fd) != 0 { throw StorageIOError(operation: "fsync directory", path: directory, errno: errno) }
    }
}

final class PosixFile: StorageFile {
    let path: String
    private var fd: Int32

    init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close() }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int {
        while true {
            let n = pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset))
            if n > 0 { return n }
            if n < 0 && errno == EINTR { continue }
            throw StorageIOError(operation: "pwrite", path: path, errno: n < 0 ? errno : EIO)
        }
    }

    func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var done = 0
        try result.withUnsafeMutableBytes { raw in
            while done < count {
                let n = pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n == 0 { break }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StorageIOError(operation: "pread", path: path, errno: errno)
                }
                done += n
            }
        }
        if done < count { result.removeLast(count - done) }
        return result
    }

    func size() throws -> UInt64 {
        var st = stat()
        if fstat(fd, &st) != 0 { throw StorageIOError(operation: "fstat", path: path, errno: errno) }
        return UInt64(st.st_size)
    }

    func truncate(to size: UInt64) throws {
        if ftruncate(fd, off_t(size)) != 0 { throw StorageIOError(operation: "ftruncate", path: path, errno: errno) }
    }

    func sync() throws {
        if fdatasync(fd) != 0 { throw StorageIOError(operation: "fdatasync", path: path, errno: errno) }
    }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }
}

final class PosixDirectoryLock: DirectoryLock {
    private var fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { release() }
    func release() {
        if fd >= 0 {
            // Unlock before closing: a process spawned by another thread holds a copy of this
            // descriptor from fork until exec (O_CLOEXEC acts only at exec), and while it does,
            // close alone leaves the lock held, so a reopen in that window fails (seen in CI).
            // LOCK_UN releases the lock on the shared open file description at once.
            _ = flock(fd, LOCK_UN)
            Glibc.close(fd)
            fd = -1
        }
    }
}
