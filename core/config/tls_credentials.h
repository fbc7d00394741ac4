// Mutual-TLS credentials for the vendor <-> partner gRPC link, loaded from PEM files and checked
// at start-up so that a wrong file is a clear error ("vendor.crt: certificate has expired",
// "acme.key: does not match acme.crt") instead of an opaque handshake failure later.
//
// Both sides trust one CA (the vendor's PKI, scripts/make_certs.sh). The server REQUIRES a
// client certificate and verifies it against the CA; the client presents its certificate and
// verifies the server's certificate and name (gRPC's default host-name check against the target,
// or `server_name` when set).
//
// The credentials are built with gRPC's TLS credentials API (grpc::experimental::Tls*), which can
// log the TLS session secrets for the partner's traffic audit (TlsEndpointOptions). gRPC 1.51 has
// no setter for the protocol version there; both ends are this project's gRPC/OpenSSL, which
// negotiate TLS 1.3, the only version the audit decrypts (a TLS 1.2 session fails the audit).
//
// Thread safety: free functions, no shared state.
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace fedface {

// Paths of one side's PEM files.
struct TlsFiles {
  std::string ca_cert;  // the CA certificate(s) that must have signed the PEER's certificate
  std::string cert;     // this side's certificate (chain)
  std::string key;      // this side's private key (unencrypted PEM)
};

// The PEM text of one side, checked: each file exists and is at most 1 MiB, the CA file holds
// at least one certificate, the key parses and matches the certificate, and the certificate is
// within its validity period.
struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  std::string subject_cn;  // CN of this side's certificate, for log lines
};

// Reads and checks `files`; errors name the file and the reason.
absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFiles& files);

// What else one TLS endpoint does, beyond its PEM material.
struct TlsEndpointOptions {
  // Where gRPC writes the session secrets of this endpoint's connections (NSS key log format);
  // "" (the default): not logged. Give it TlsKeyLogFile::grpc_path() (tls_key_log_file.h), not
  // the key log itself: gRPC truncates the path it opens and ends lines with a bare '\r'.
  std::string key_log_path;
};

// Server side: TLS 1.2+ with a client certificate REQUIRED and verified against ca_pem.
std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(const TlsMaterial& material);
std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(
    const TlsMaterial& material, const TlsEndpointOptions& options);

// Client side: presents cert/key and verifies the server against ca_pem. The server's name is
// checked against the channel's target host unless the caller overrides it with
// grpc::ChannelArguments::SetSslTargetNameOverride.
std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(const TlsMaterial& material);
std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(
    const TlsMaterial& material, const TlsEndpointOptions& options);

}  // namespace fedface
