#include "model_vendor/registry/model_registry_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/common/files.h"
#include "core/config/peer_identity.h"

namespace fedface::vendor {
namespace {

constexpr uint64_t kMaxSignatureBytes = 1024;  // a valid one is 64; anything else is read anyway

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

ModelRegistryService::ModelRegistryService(RegistryFolder folder, RegistryServiceOptions options,
                                           std::ostream* log)
    : folder_(std::move(folder)), options_(std::move(options)), log_(log) {}

void ModelRegistryService::Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mu_);
  *log_ << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ ", absl::Now(), absl::UTCTimeZone()) << line
        << std::endl;
}

grpc::Status ModelRegistryService::Identify(grpc::ServerContext* context, const char* rpc,
                                            std::string* partner) {
  // A verified certificate issued for clientAuth: another partner's server key cannot call.
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  absl::StatusOr<std::string> name =
      auth ? AuthenticatedClientName(*auth)
           : absl::UnauthenticatedError("a client certificate is required");
  if (!name.ok()) {
    Log(absl::StrCat("refused ", rpc, " from ", context->peer(), ": ", name.status().message()));
    return grpc::Status(static_cast<grpc::StatusCode>(name.status().code()),
                        std::string(name.status().message()));
  }
  *partner = *name;
  if (!options_.allowed_partners.count(*partner)) {
    Log(absl::StrCat("refused ", rpc, " from partner '", *partner, "' (", context->peer(),
                     "): not in server.partners"));
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("partner '", *partner, "' is not allowed"));
  }
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::ListModels(grpc::ServerContext* context,
                                              const fedface::v1::ListModelsRequest*,
                                              fedface::v1::ListModelsResponse* response) {
  std::string partner;
  if (grpc::Status s = Identify(context, "ListModels", &partner); !s.ok()) return s;
  std::vector<std::string> warnings;
  absl::StatusOr<std::vector<PublishedPackage>> packages = folder_.Scan(&warnings);
  for (const std::string& w : warnings) Log(absl::StrCat("registry: ", w));
  if (!packages.ok()) {
    Log(absl::StrCat("ListModels for ", partner, " failed: ", packages.status().message()));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the registry cannot be read");
  }
  for (const PublishedPackage& p : *packages) {
    fedface::v1::ModelListing* listing = response->add_models();
    listing->set_model_id(p.manifest.model_id);
    listing->set_version(p.version);
    listing->set_weights_bytes(p.manifest.weights.bytes);
    listing->set_weights_sha256(p.manifest.weights.sha256);
    listing->set_created_at(p.manifest.created_at);
    listing->set_signing_key_id(p.manifest.signing_key_id);
  }
  Log(absl::StrCat("ListModels partner=", partner, " versions=", packages->size()));
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::GetManifest(grpc::ServerContext* context,
                                               const fedface::v1::GetManifestRequest* request,
                                               fedface::v1::GetManifestResponse* response) {
  std::string partner;
  if (grpc::Status s = Identify(context, "GetManifest", &partner); !s.ok()) return s;
  absl::StatusOr<PublishedPackage> package = folder_.Find(request->version());
  if (!package.ok()) return ToGrpc(package.status());
  const std::filesystem::path dir(package->dir);
  absl::StatusOr<std::string> manifest =
      ReadFile((dir / kManifestFile).string(), kMaxManifestBytes);
  absl::StatusOr<std::string> sig = ReadFile((dir / kSignatureFile).string(), kMaxSignatureBytes);
  if (!manifest.ok() || !sig.ok()) {
    const absl::Status& bad = manifest.ok() ? sig.status() : manifest.status();
    Log(absl::StrCat("GetManifest partner=", partner, " version=", request->version(),
                     " failed: ", bad.message()));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("version ", request->version(), ": package unreadable"));
  }
  response->set_manifest_json(*std::move(manifest));
  response->set_manifest_sig(*std::move(sig));
  for (const SelfTestCase& c : package->manifest.self_test.cases) {
    absl::StatusOr<std::string> chip = ReadFile((dir / c.chip).string(), kMaxChipBytes);
    if (!chip.ok()) {
      Log(absl::StrCat("GetManifest partner=", partner, " version=", request->version(),
                       " failed: ", chip.status().message()));
      return grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("version ", request->version(), ": ", c.chip, " unreadable"));
    }
    fedface::v1::SelfTestFile* file = response->add_self_test_files();
    file->set_path(c.chip);
    file->set_content(*std::move(chip));
  }
  Log(absl::StrCat("GetManifest partner=", partner, " version=", request->version()));
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::DownloadWeights(
    grpc::ServerContext* context, const fedface::v1::DownloadWeightsRequest* request,
    grpc::ServerWriter<fedface::v1::WeightsChunk>* writer) {
  std::string partner;
  if (grpc::Status s = Identify(context, "DownloadWeights", &partner); !s.ok()) return s;
  absl::StatusOr<PublishedPackage> package = folder_.Find(request->version());
  if (!package.ok()) return ToGrpc(package.status());
  const std::string path = (std::filesystem::path(package->dir) / kWeightsFile).string();
  const std::string what =
      absl::StrCat("download partner=", partner, " version=", request->version());
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    Log(absl::StrCat(what, " failed: ", path, ": ", std::strerror(errno)));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("version ", request->version(), ": weights unreadable"));
  }
  const uint64_t total = static_cast<uint64_t>(st.st_size);
  if (total > options_.max_weights_bytes) {
    Log(absl::StrCat(what, " refused: ", total, " bytes exceed registry.max_weights_bytes"));
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("version ", request->version(), ": weights exceed the server's size limit"));
  }
  const uint64_t start = request->start_offset();
  if (start > total) {
    Log(absl::StrCat(what, " refused: start offset ", start, " beyond ", total, " bytes"));
    return grpc::Status(
        grpc::StatusCode::OUT_OF_RANGE,
        absl::StrCat("start offset ", start, " is beyond the ", total, " bytes of the weights"));
  }
  Log(absl::StrCat(what, " start offset=", start, " total=", total));
  std::string buffer(options_.chunk_bytes, '\0');
  uint64_t offset = start;
  fedface::v1::WeightsChunk chunk;
  while (offset < total) {
    ssize_t n = ::pread(fd.get(), buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Log(absl::StrCat(what, " failed at ", offset, ": ", std::strerror(errno)));
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "weights read failed");
    }
    if (n == 0) break;  // the file shrank; the client sees a short stream and refuses it
    chunk.set_offset(offset);
    chunk.set_data(buffer.data(), static_cast<size_t>(n));
    chunk.set_total_bytes(total);
    if (!writer->Write(chunk)) {
      Log(absl::StrCat(what, " interrupted by the client at ", offset, " of ", total, " (sent ",
                       offset - start, " bytes)"));
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
    offset += static_cast<uint64_t>(n);
    for (uint32_t waited = 0; waited < options_.test_delay_per_chunk_ms; waited += 10) {
      if (context->IsCancelled()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  Log(absl::StrCat(what, " complete offset=", start, " sent=", offset - start, " end=", offset,
                   " total=", total));
  return grpc::Status::OK;
}

}  // namespace fedface::vendor
