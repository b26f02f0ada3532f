// aerodb-policy-worker — evaluates site policies for a supervising host (the node, or
// aerodb-policy) over the socket on its standard input, and is killed by that host at a
// policy's deadline. Not for people: the protocol is PolicyWire.swift, the design
// docs/sandbox.md ("Process isolation").
import AeroPolicy
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

guard CommandLine.arguments.count == 2, CommandLine.arguments[1] == PolicyWorker.serveArgument else {
    let message = "aerodb-policy-worker: started by aerodb and aerodb-policy only (argument \(PolicyWorker.serveArgument))\n"
    _ = message.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
PolicyWorker.serve(fd: 0)
