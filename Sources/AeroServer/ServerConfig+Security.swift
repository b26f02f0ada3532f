// ServerConfig+Security.swift — the `security` section of a node's configuration.
//
//     "security": {
//       "tls":    {"cert": "certs/n1.pem", "key": "certs/n1.key", "ca": "certs/ca.pem"},
//       "tokens": [{"name": "ops", "roles": ["operator"], "sha256": "<64 hex>"}],
//       "insecure": false
//     }
//
// `tls` makes the HTTP API serve HTTPS and the peer protocol run over mutual TLS (member
// certificates of the cluster CA, docs/security.md); `tokens` are the bearer tokens clients and
// operators present, stored hashed (AeroSecurity's AccessTokens.swift); `insecure` (or `serve
// --insecure`) is plain, unauthenticated serving, allowed on loopback addresses only.

import AeroSecurity

public struct SecurityConfig: Hashable, Sendable {
    public var tls: TLSFiles?
    public var tokens: TokenTable
    public var insecure: Bool

    public init(tls: TLSFiles? = nil, tokens: TokenTable = TokenTable([]), insecure: Bool = false) {
        self.tls = tls
        self.tokens = tokens
        self.insecure = insecure
    }
}
