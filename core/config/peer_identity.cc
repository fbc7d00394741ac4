#include "core/config/peer_identity.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

std::string CommonName(X509* cert) {
  char cn[256] = {0};
  const int n =
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  return n > 0 ? std::string(cn, static_cast<std::size_t>(n)) : std::string();
}

std::vector<std::string> AltNames(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                       static_cast<std::size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      const int length = ASN1_STRING_length(ip);
      char text[INET6_ADDRSTRLEN] = {0};
      if ((length == 4 || length == 16) &&
          inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text,
                    sizeof text) != nullptr) {
        out.emplace_back(text);
      }
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace

std::string PeerCertificate::DisplayName() const {
  if (!common_name.empty()) return common_name;
  return alt_names.empty() ? std::string() : alt_names.front();
}

absl::StatusOr<PeerCertificate> ParsePeerCertificate(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  ERR_clear_error();
  if (cert == nullptr) return absl::InvalidArgumentError("the peer's certificate is not PEM");
  PeerCertificate out;
  out.common_name = CommonName(cert.get());
  out.alt_names = AltNames(cert.get());
  // X509_get_extended_key_usage: UINT32_MAX when the extension is absent (any purpose).
  const uint32_t usage = X509_get_extended_key_usage(cert.get());
  if (usage != UINT32_MAX) {
    out.client_auth = (usage & XKU_SSL_CLIENT) != 0;
    out.server_auth = (usage & XKU_SSL_SERVER) != 0;
  }
  return out;
}

absl::Status CheckPeerRole(const PeerCertificate& cert, TlsRole role) {
  const bool server = role == TlsRole::kServer;
  if (server ? cert.server_auth : cert.client_auth) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "certificate '", cert.DisplayName(), "' is not a ", server ? "server" : "client",
      " certificate (its extendedKeyUsage lacks ", server ? "serverAuth" : "clientAuth", ")"));
}

absl::Status CheckPartnerServer(const PeerCertificate& cert, const std::string& partner,
                                const std::string& address) {
  if (absl::Status s = CheckPeerRole(cert, TlsRole::kServer); !s.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("partner '", partner, "' at ", address, ": ", s.message()));
  }
  if (cert.common_name != partner) {
    return absl::PermissionDeniedError(absl::StrCat(
        "partner '", partner, "' at ", address, " presented the certificate of '",
        cert.DisplayName(), "' (CN=", cert.common_name, "), not its own (CN=", partner, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<PeerCertificate> PeerCertificateOf(const grpc::AuthContext& auth) {
  const std::vector<grpc::string_ref> pem =
      auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (!auth.IsPeerAuthenticated() || pem.empty()) {
    return absl::UnauthenticatedError("the peer presented no verified certificate");
  }
  return ParsePeerCertificate(std::string(pem.front().data(), pem.front().size()));
}

absl::StatusOr<std::string> AuthenticatedClientName(const grpc::AuthContext& auth) {
  absl::StatusOr<PeerCertificate> cert = PeerCertificateOf(auth);
  if (!cert.ok()) return absl::UnauthenticatedError("a client certificate is required");
  RETURN_IF_ERROR(CheckPeerRole(*cert, TlsRole::kClient));
  if (cert->DisplayName().empty()) {
    return absl::UnauthenticatedError("the client certificate names no one (no CN, no SAN)");
  }
  return cert->DisplayName();
}

}  // namespace fedface
