// MemberIdentity.swift — which member a verified peer certificate names.
//
// Called only on a certificate that NIOSSL already verified against the cluster CA (the TLS
// contexts of TLSContexts.swift trust that CA alone). A certificate names member ID when its
// subject has the organizational unit `aerodb-member` and the common name ID (ClusterCertificates
// invariant 1), and ID is a configured member: a certificate of the CA for a removed member, or
// one without the unit, names nobody.

import AeroCore
import NIOSSL
import SwiftASN1
import X509

public enum MemberIdentity {
    /// The member id in `certificate`'s subject, nil when it is not a member certificate.
    public static func memberID(derEncoded der: [UInt8]) -> NodeID? {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        var unit: String?
        var common: String?
        for rdn in certificate.subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.organizationalUnitName { unit = String(attribute.value) }
                if attribute.type == .RDNAttributeType.commonName { common = String(attribute.value) }
            }
        }
        guard unit == ClusterCertificates.memberUnit, let common, !common.isEmpty else { return nil }
        return NodeID(common)
    }

    /// The configured member a verified peer certificate names, nil when none.
    public static func member(of certificate: NIOSSLCertificate?, members: Set<NodeID>) -> NodeID? {
        guard let certificate, let der = try? certificate.toDERBytes(), let id = memberID(derEncoded: der),
              members.contains(id) else { return nil }
        return id
    }
}
