#include "core/config/tls_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"

namespace fedface {
namespace {

constexpr uint64_t kMaxPemBytes = uint64_t{1} << 20;

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr MemBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
}

std::string CommonName(X509* cert) {
  char cn[256] = {0};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  return n > 0 ? std::string(cn, static_cast<size_t>(n)) : std::string();
}

// Parses every certificate in `pem`; fails when there is none.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(const std::string& pem,
                                                       const std::string& path) {
  std::vector<X509Ptr> certs;
  BioPtr bio = MemBio(pem);
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    certs.emplace_back(cert, X509_free);
  }
  ERR_clear_error();  // the loop ends on "no start line", which is not an error here
  if (certs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no PEM certificate in the file"));
  }
  return certs;
}

absl::Status CheckValidity(X509* cert, const std::string& path) {
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": certificate is not valid yet"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": certificate has expired"));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::experimental::CertificateProviderInterface> CertificateProvider(
    const TlsMaterial& material) {
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      material.ca_pem,
      std::vector<grpc::experimental::IdentityKeyCertPair>{{material.key_pem, material.cert_pem}});
}

// Both sides present their certificate and verify the peer's against the CA.
void WatchMaterial(grpc::experimental::TlsCredentialsOptions& options,
                   const TlsEndpointOptions& endpoint) {
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  if (!endpoint.key_log_path.empty()) {
    options.set_tls_session_key_log_file_path(endpoint.key_log_path);
  }
}

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFiles& files) {
  TlsMaterial out;
  for (auto [path, dest] :
       {std::pair{&files.ca_cert, &out.ca_pem}, std::pair{&files.cert, &out.cert_pem},
        std::pair{&files.key, &out.key_pem}}) {
    if (path->empty()) return absl::InvalidArgumentError("a TLS file path is empty");
    ASSIGN_OR_RETURN(std::string text, ReadFile(*path, kMaxPemBytes));
    *dest = std::move(text);
  }
  ASSIGN_OR_RETURN(std::vector<X509Ptr> ca, ParseCertificates(out.ca_pem, files.ca_cert));
  for (const X509Ptr& cert : ca) {
    RETURN_IF_ERROR(CheckValidity(cert.get(), files.ca_cert));
  }
  ASSIGN_OR_RETURN(std::vector<X509Ptr> chain, ParseCertificates(out.cert_pem, files.cert));
  X509* leaf = chain.front().get();
  RETURN_IF_ERROR(CheckValidity(leaf, files.cert));

  BioPtr key_bio = MemBio(out.key_pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.key, ": not an unencrypted PEM private key"));
  }
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(files.key, ": does not match the certificate in ", files.cert));
  }
  out.subject_cn = CommonName(leaf);
  return out;
}

std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(const TlsMaterial& material) {
  return MutualTlsServerCredentials(material, TlsEndpointOptions{});
}

std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(
    const TlsMaterial& material, const TlsEndpointOptions& endpoint) {
  grpc::experimental::TlsServerCredentialsOptions options(CertificateProvider(material));
  WatchMaterial(options, endpoint);
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(const TlsMaterial& material) {
  return MutualTlsChannelCredentials(material, TlsEndpointOptions{});
}

std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(
    const TlsMaterial& material, const TlsEndpointOptions& endpoint) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(CertificateProvider(material));
  WatchMaterial(options, endpoint);
  // The server's chain against ca_pem, then its name against the target (or the override).
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace fedface
