// NodeAddress.swift — what `--addr` and `--primary-addr` accept, checked before any request so
// that a typo is a usage error (exit 2) that quotes the value and says what is expected, not a
// transport error from deep inside the HTTP client.
//
// Accepted: HOST:PORT where PORT is 1–65535 and HOST is a dotted IPv4 address (four numbers
// 0–255), a bracketed IPv6 address ([::1]), or a DNS name (labels of letters, digits and '-',
// 1–63 bytes each). Refused with a named reason: a URL scheme, a missing or non-numeric port,
// a port out of range, a malformed IPv4 address, a malformed name.

#if canImport(Glibc)
    import Glibc
#endif

struct NodeAddress: Equatable, CustomStringConvertible {
    let host: String
    let port: Int
    var description: String { "\(host):\(port)" }

    static let portRange = 1...65535
    static let labelBytesMax = 63

    /// Parses `value` given for `flag`; the error message is the whole explanation.
    static func parse(_ value: String, flag: String = "--addr") -> Result<NodeAddress, NodeAddressError> {
        func refuse(_ why: String) -> Result<NodeAddress, NodeAddressError> {
            .failure(NodeAddressError(message: "\(flag) \"\(value)\": \(why)"))
        }
        if let scheme = value.range(of: "://") {
            let rest = value[scheme.upperBound...].split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            return refuse("give host:port without a URL scheme (e.g. \(rest.isEmpty ? "127.0.0.1:7001" : rest))")
        }
        guard let colon = value.lastIndex(of: ":") else {
            return refuse("expected host:port (e.g. 127.0.0.1:7001); no port given")
        }
        let host = String(value[..<colon])
        let portText = String(value[value.index(after: colon)...])
        guard !host.isEmpty else { return refuse("expected host:port (e.g. 127.0.0.1:7001); no host given") }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), portText.count <= 6, let port = Int(portText) else {
            return refuse("the port \"\(portText)\" is not a number")
        }
        guard portRange.contains(port) else {
            return refuse("the port \(port) is out of range (\(portRange.lowerBound)-\(portRange.upperBound))")
        }
        if host.hasPrefix("[") || host.hasSuffix("]") {
            let inner = host.dropFirst().dropLast()
            // The C library decides what an IPv6 address is (`[:]` and `[1::2::3]` are not).
            var parsed = in6_addr()
            guard host.hasPrefix("["), host.hasSuffix("]"), inet_pton(AF_INET6, String(inner), &parsed) == 1 else {
                return refuse("\"\(host)\" is not a bracketed IPv6 address (e.g. [::1])")
            }
            return .success(NodeAddress(host: host, port: port))
        }
        if host.contains(":") {
            return refuse("an IPv6 address must be in brackets (e.g. [::1]:7001)")
        }
        if host.allSatisfy({ $0.isASCIIDigit || $0 == "." }) {
            let parts = host.split(separator: ".", omittingEmptySubsequences: false)
            let valid = parts.count == 4 && parts.allSatisfy { part in
                !part.isEmpty && part.count <= 3 && (Int(part).map { $0 <= 255 } ?? false)
            }
            guard valid else {
                return refuse("\"\(host)\" is not an IPv4 address (four numbers 0-255 separated by dots)")
            }
            return .success(NodeAddress(host: host, port: port))
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            let ok = !label.isEmpty && label.utf8.count <= labelBytesMax && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            guard ok else {
                return refuse("\"\(host)\" is not a host name (letters, digits and '-' between dots) or an IP address")
            }
        }
        return .success(NodeAddress(host: host, port: port))
    }
}

struct NodeAddressError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
