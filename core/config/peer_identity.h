// Who the peer of a verified mutual-TLS connection is, and whether it may play the role it
// plays. The CA check (gRPC/OpenSSL) only says "some certificate of our PKI"; these checks say
// WHICH one, after the handshake, from the peer's certificate in the call's AuthContext:
//   - role: a server must present a certificate whose extendedKeyUsage names serverAuth, a
//     client one naming clientAuth (scripts/make_certs.sh issues one usage per certificate), so
//     a partner's client key cannot serve and a server key cannot call;
//   - identity: the coordinator requires partner P's server certificate to carry CN=P, so the
//     certificate of partner A presented at partner B's address is refused.
// A certificate without the extendedKeyUsage extension is refused for both roles: our PKI always
// sets it, and "any purpose" is what this check exists to exclude.
//
// Thread safety: free functions, no shared state.
#pragma once

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedface {

// The side of a TLS connection a certificate is used for.
enum class TlsRole { kClient, kServer };

// What the checks need of a certificate.
struct PeerCertificate {
  std::string common_name;             // "" when the subject has no CN
  std::vector<std::string> alt_names;  // subjectAltName DNS names and IP addresses, as text
  bool client_auth = false;            // extendedKeyUsage names clientAuth
  bool server_auth = false;            // extendedKeyUsage names serverAuth

  // CN, else the first alternative name, else "": for messages and allowlists.
  std::string DisplayName() const;
};

// The first certificate of `pem`; INVALID_ARGUMENT when there is none.
absl::StatusOr<PeerCertificate> ParsePeerCertificate(const std::string& pem);

// OK when `cert` was issued for `role`; else PERMISSION_DENIED naming the certificate, the role
// and the usage it lacks.
absl::Status CheckPeerRole(const PeerCertificate& cert, TlsRole role);

// The coordinator's check of the server certificate found at partner `partner`'s configured
// `address`: issued for serving and CN == partner. The error names both partners.
absl::Status CheckPartnerServer(const PeerCertificate& cert, const std::string& partner,
                                const std::string& address);

// The peer's leaf certificate from a call's AuthContext (GRPC_X509_PEM_CERT_PROPERTY_NAME);
// UNAUTHENTICATED when the connection carries no verified certificate.
absl::StatusOr<PeerCertificate> PeerCertificateOf(const grpc::AuthContext& auth);

// For servers: the calling client's name (PeerCertificate::DisplayName) when it presented a
// verified certificate issued for clientAuth; UNAUTHENTICATED without a certificate,
// PERMISSION_DENIED for a certificate of another role.
absl::StatusOr<std::string> AuthenticatedClientName(const grpc::AuthContext& auth);

}  // namespace fedface
