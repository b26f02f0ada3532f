// Access.swift — who may do what: roles, the access a route needs, and the principal a request
// authenticated as. Pure values; the HTTP middleware (AeroServer/AuthMiddleware.swift) and the
// peer protocol (AeroReplication) decide with them.
//
// Invariants:
//   1. Roles are cumulative: reader ⊂ writer ⊂ operator. A token's roles are a set; it may do
//      what its highest role may.
//   2. `.member` access is granted only to a peer that presented a certificate of the cluster CA
//      naming a configured member (MemberIdentity.swift); no token ever grants it. A member may
//      also read (a candidate gathers its peers' status): read, member, member-or-operator.
//   3. `.memberOrOperator` is granted to a member certificate or to the operator role, and the
//      principal says which, so the journal records who acted.
//   4. `Principal.insecure` exists only when the node serves with `--insecure` (logged, shown in
//      status); it is granted every access, and named as such in every record.

import AeroCore

/// A token's role (docs/security.md, "Roles").
public enum Role: String, CaseIterable, Comparable, Sendable {
    case reader
    case writer
    case `operator`

    var rank: Int {
        switch self {
        case .reader: 0
        case .writer: 1
        case .operator: 2
        }
    }

    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// What a route needs (RouteAccess.swift in AeroServer maps each route to one).
public enum Access: String, Sendable, CaseIterable {
    /// Reads, status, metrics: any role.
    case read
    /// Writes and transactions: writer or operator.
    case write
    /// Promote, decisions, unfence, rejoin, re-seed, cluster labels: operator.
    case operate
    /// Routes only members call (claim, fence, release): a member's client certificate.
    case member
    /// Routes members and operators call (follow, unfence): a member certificate or operator.
    case memberOrOperator = "member-or-operator"

    /// The lowest role that grants this access, nil when no token can (member only).
    public var roleNeeded: Role? {
        switch self {
        case .read: .reader
        case .write: .writer
        case .operate, .memberOrOperator: .operator
        case .member: nil
        }
    }
}

/// Who a request authenticated as.
public enum Principal: Equatable, Sendable, CustomStringConvertible {
    /// A bearer token of the node's configuration: its name and roles.
    case token(name: String, roles: Set<Role>)
    /// A peer that presented a member certificate of the cluster CA.
    case member(NodeID)
    /// The node serves with `--insecure`: nobody was authenticated.
    case insecure

    /// The name recorded as `request.requested_by` and in the journal: `token:NAME`,
    /// `member:ID`, or `insecure` (docs/security.md, "The principal").
    public var description: String {
        switch self {
        case .token(let name, _): "token:\(name)"
        case .member(let id): "member:\(id.rawValue)"
        case .insecure: "insecure"
        }
    }

    /// Whether this principal may use a route that needs `access` (invariants 1–4).
    public func allows(_ access: Access) -> Bool {
        switch self {
        case .insecure:
            return true
        case .member:
            return access == .read || access == .member || access == .memberOrOperator
        case .token(_, let roles):
            guard let needed = access.roleNeeded, let highest = roles.max() else { return false }
            return highest >= needed
        }
    }
}
