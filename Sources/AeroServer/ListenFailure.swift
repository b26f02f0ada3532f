// ListenFailure.swift — a listener that cannot bind is an operator's problem (another process,
// or another node of the same cluster, holds the port): the error names the node, what the
// listener is for and the address, instead of NIO's "bind(descriptor:ptr:bytes:)".
import AeroCore
import Foundation
import NIOCore

enum ListenFailure {
    /// `error` as a StartupError that names `node`, the `listener` ("HTTP", "peer") and `address`.
    /// Errors that are not a bind failure pass through unchanged.
    static func named(_ error: any Error, node: NodeID, listener: String, address: String) -> any Error {
        guard let io = error as? IOError else { return error }
        let cause: String
        switch io.errnoCode {
        case EADDRINUSE: cause = "the address is already in use (another process, or another node, listens there)"
        case EADDRNOTAVAIL: cause = "the address is not one of this machine's"
        case EACCES: cause = "permission denied (ports below 1024 need privileges)"
        default: return error
        }
        return StartupError(message: "node \(node): cannot listen for \(listener) on \(address): \(cause)")
    }
}
