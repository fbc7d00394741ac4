#include "partner_node/model_cache/model_puller.h"

#include <grpcpp/client_context.h>

#include <chrono>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/common/files.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/package/ed25519.h"
#include "core/package/model_manifest.h"
#include "core/package/package_verifier.h"
#include "fedface/v1/model_registry.grpc.pb.h"
#include "partner_node/model_cache/model_cache.h"
#include "partner_node/model_cache/vendor_channel.h"
#include "partner_node/model_cache/version_order.h"
#include "partner_node/model_cache/weights_download.h"

namespace fedface::partner {
namespace fs = std::filesystem;
namespace {

using fedface::v1::ModelRegistry;

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

void SetDeadline(grpc::ClientContext* context, absl::Duration deadline) {
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
}

absl::Status Refuse(const std::string& version, absl::StatusCode code, absl::string_view reason) {
  return absl::Status(code, absl::StrCat("refused version ", version, ": ", reason));
}

// Picks the version to pull from what the vendor offers.
absl::StatusOr<std::string> ChooseVersion(const fedface::v1::ListModelsResponse& listing,
                                          const std::string& wanted) {
  std::vector<std::string> offered;
  for (const auto& m : listing.models()) {
    if (IsValidModelVersion(m.version())) offered.push_back(m.version());
  }
  SortModelVersions(&offered);
  if (offered.empty()) return absl::NotFoundError("the vendor offers no model version");
  if (wanted.empty()) return offered.back();
  for (const std::string& v : offered) {
    if (v == wanted) return v;
  }
  return absl::NotFoundError(absl::StrCat("version ", wanted, " is not offered by the vendor ",
                                          "(offered: ", absl::StrJoin(offered, ", "), ")"));
}

// Checks the manifest response against the pinned key and the limits, before any weights are
// downloaded. Returns the parsed, signed manifest.
absl::StatusOr<ModelManifest> CheckManifestResponse(const fedface::v1::GetManifestResponse& r,
                                                    const std::string& version,
                                                    const Ed25519PublicKey& pinned_key,
                                                    uint64_t max_weights_bytes) {
  if (r.manifest_json().size() > kMaxManifestBytes) {
    return Refuse(version, absl::StatusCode::kResourceExhausted,
                  absl::StrCat("manifest of ", r.manifest_json().size(), " bytes exceeds ",
                               kMaxManifestBytes));
  }
  if (absl::Status s = pinned_key.Verify(r.manifest_json(), r.manifest_sig()); !s.ok()) {
    // Name the key when the (unverified) manifest says who signed it: the usual cause.
    absl::StatusOr<ModelManifest> claimed = ParseManifest(r.manifest_json(), "manifest.json");
    if (claimed.ok() && claimed->signing_key_id != pinned_key.key_id()) {
      return Refuse(version, absl::StatusCode::kPermissionDenied,
                    absl::StrCat("manifest signed by another key (id ", claimed->signing_key_id,
                                 ", pinned ", pinned_key.key_id(), "): ", s.message()));
    }
    return Refuse(version, absl::StatusCode::kPermissionDenied,
                  absl::StrCat("manifest signature against the pinned key ", pinned_key.key_id(),
                               ": ", s.message()));
  }
  absl::StatusOr<ModelManifest> manifest = ParseManifest(r.manifest_json(), "manifest.json");
  if (!manifest.ok()) {
    return Refuse(version, absl::StatusCode::kInvalidArgument, manifest.status().message());
  }
  if (manifest->version != version) {
    return Refuse(version, absl::StatusCode::kPermissionDenied,
                  absl::StrCat("the vendor's manifest is signed for version ", manifest->version,
                               " (a manifest swapped between versions)"));
  }
  if (manifest->weights.bytes > max_weights_bytes) {
    return Refuse(
        version, absl::StatusCode::kResourceExhausted,
        absl::StrCat("weights of ", manifest->weights.bytes,
                     " bytes exceed model_cache.max_weights_bytes (", max_weights_bytes, ")"));
  }
  if (!IsSha256Hex(manifest->weights.sha256)) {
    return Refuse(version, absl::StatusCode::kInvalidArgument, "weights.sha256 is not 64 hex");
  }
  std::set<std::string> named;
  for (const SelfTestCase& c : manifest->self_test.cases) named.insert(c.chip);
  std::set<std::string> received;
  if (static_cast<size_t>(r.self_test_files_size()) > kMaxSelfTestCases) {
    return Refuse(version, absl::StatusCode::kResourceExhausted, "too many self-test files");
  }
  for (const auto& file : r.self_test_files()) {
    if (!named.count(file.path())) {
      return Refuse(version, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("self-test file '", file.path(), "' is not in the manifest"));
    }
    if (!received.insert(file.path()).second) {
      return Refuse(version, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("self-test file '", file.path(), "' sent twice"));
    }
    if (file.content().size() > kMaxChipBytes) {
      return Refuse(
          version, absl::StatusCode::kResourceExhausted,
          absl::StrCat("self-test file '", file.path(), "' exceeds ", kMaxChipBytes, " bytes"));
    }
  }
  if (received.size() != named.size()) {
    return Refuse(version, absl::StatusCode::kInvalidArgument,
                  absl::StrCat("the vendor sent ", received.size(), " of the ", named.size(),
                               " self-test files"));
  }
  return manifest;
}

// Writes the manifest, signature and chips into the staging folder and moves the complete
// weights in. The chip paths were checked against the signed manifest, whose validation only
// admits safe relative paths.
absl::Status AssembleStaging(const std::string& staging, const fedface::v1::GetManifestResponse& r,
                             const std::string& partial_weights) {
  const fs::path root(staging);
  RETURN_IF_ERROR(WriteFileAtomically((root / kManifestFile).string(), r.manifest_json()));
  RETURN_IF_ERROR(WriteFileAtomically((root / kSignatureFile).string(), r.manifest_sig()));
  for (const auto& file : r.self_test_files()) {
    const fs::path target = (root / file.path()).lexically_normal();
    if (file.path().find("..") != std::string::npos || fs::path(file.path()).is_absolute()) {
      return absl::InvalidArgumentError(absl::StrCat("unsafe self-test path ", file.path()));
    }
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    RETURN_IF_ERROR(WriteFileAtomically(target.string(), file.content()));
  }
  std::error_code ec;
  fs::rename(partial_weights, root / kWeightsFile, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat(partial_weights, ": cannot move into ", staging, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PullResult> PullModel(const Config& config, const PullRequest& request,
                                     std::ostream* progress) {
  ASSIGN_OR_RETURN(Ed25519PublicKey pinned_key,
                   Ed25519PublicKey::LoadPem(config.GetPath("vendor.signing_key")));
  ASSIGN_OR_RETURN(ModelCache cache, ModelCache::Open(config.GetPath("model_cache.dir")));
  ASSIGN_OR_RETURN(ModelCacheLock lock, ModelCacheLock::Acquire(cache.dir()));
  PullResult result;
  if (absl::StatusOr<std::string> active = cache.ActiveVersion(); active.ok()) {
    result.previous_active = *active;
  } else if (progress) {
    *progress << "warning: " << active.status().message() << std::endl;
  }

  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, OpenVendorChannel(config));
  std::unique_ptr<ModelRegistry::Stub> stub = ModelRegistry::NewStub(channel);
  const std::string vendor = config.GetString("vendor.address");
  const absl::Duration rpc_deadline =
      absl::Seconds(config.GetInt("model_cache.rpc_deadline_seconds"));

  fedface::v1::ListModelsResponse listing;
  {
    grpc::ClientContext context;
    SetDeadline(&context, rpc_deadline);
    grpc::Status s = stub->ListModels(&context, fedface::v1::ListModelsRequest(), &listing);
    if (!s.ok()) return FromGrpc(s, absl::StrCat("vendor ", vendor, ": ListModels failed"));
  }
  const std::string wanted =
      request.version.empty() ? config.GetString("model_cache.pinned_version") : request.version;
  ASSIGN_OR_RETURN(std::string version, ChooseVersion(listing, wanted));
  result.version = version;

  if (cache.IsInstalled(version)) {
    if (!request.make_active) {
      if (progress) *progress << "version " << version << " is installed" << std::endl;
      return result;
    }
    if (result.previous_active == version) {
      if (progress) *progress << "version " << version << " is installed and active" << std::endl;
      return result;
    }
    if (progress) *progress << "version " << version << " is installed; re-verifying" << std::endl;
    absl::StatusOr<LoadedModel> model = cache.Activate(version, pinned_key);
    if (!model.ok()) {
      return Refuse(version, model.status().code(),
                    absl::StrCat("installed copy fails verification: ", model.status().message()));
    }
    result.weights_bytes = model->manifest.weights.bytes;
    result.self_test_max_distance = model->self_test_max_distance;
    return result;
  }

  fedface::v1::GetManifestResponse manifest_response;
  {
    grpc::ClientContext context;
    SetDeadline(&context, rpc_deadline);
    fedface::v1::GetManifestRequest manifest_request;
    manifest_request.set_version(version);
    grpc::Status s = stub->GetManifest(&context, manifest_request, &manifest_response);
    if (!s.ok()) {
      return FromGrpc(s, absl::StrCat("vendor ", vendor, ": GetManifest ", version, " failed"));
    }
  }
  ASSIGN_OR_RETURN(
      ModelManifest manifest,
      CheckManifestResponse(manifest_response, version, pinned_key,
                            static_cast<uint64_t>(config.GetInt("model_cache.max_weights_bytes"))));
  result.weights_bytes = manifest.weights.bytes;

  const std::string partial = cache.PartialWeightsPath(manifest.weights.sha256);
  const absl::Time download_start = absl::Now();
  absl::StatusOr<WeightsDownload> download = DownloadWeightsResumably(
      *stub, version, manifest.weights.bytes, partial,
      absl::Seconds(config.GetInt("model_cache.download_deadline_seconds")), progress);
  if (!download.ok()) {
    if (absl::IsUnavailable(download.status()) || absl::IsDeadlineExceeded(download.status()) ||
        absl::IsCancelled(download.status())) {
      return absl::Status(download.status().code(),
                          absl::StrCat("version ", version, ": ", download.status().message(),
                                       "; the next pull resumes"));
    }
    return Refuse(version, download.status().code(), download.status().message());
  }
  result.downloaded = true;
  result.download_seconds = absl::ToDoubleSeconds(absl::Now() - download_start);
  result.resumed_from = download->resumed_from;
  result.received = download->received;

  ASSIGN_OR_RETURN(std::string staging, cache.MakeStagingDir(version));
  if (absl::Status s = AssembleStaging(staging, manifest_response, partial); !s.ok()) {
    RemoveTreeQuietly(staging);
    return s;
  }
  if (progress)
    *progress << "verifying " << version << " (signature, sha256, self-test)" << std::endl;
  // The shipped path: the complete verification of core/package, on the exact files installed.
  const absl::Time verify_start = absl::Now();
  absl::StatusOr<LoadedModel> model = LoadVerifiedModel(staging, pinned_key);
  result.verify_seconds = absl::ToDoubleSeconds(absl::Now() - verify_start);
  if (!model.ok() || model->manifest.version != version) {
    RemoveTreeQuietly(staging);  // includes the weights: resuming from bad bytes cannot help
    return Refuse(version, model.ok() ? absl::StatusCode::kDataLoss : model.status().code(),
                  model.ok() ? "the package names another version" : model.status().message());
  }
  result.self_test_max_distance = model->self_test_max_distance;
  model->net.reset();
  if (absl::Status s = cache.Install(staging, version); !s.ok()) {
    RemoveTreeQuietly(staging);
    return s;
  }
  if (request.make_active) {
    RETURN_IF_ERROR(cache.PointActiveAt(version));
  }
  return result;
}

}  // namespace fedface::partner
