#include "core/package/package_verifier.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"

namespace fedface {
namespace {

// The package's fixed files must be regular files within their limits before any is read.
absl::Status CheckFile(const std::string& path, uint64_t max_bytes, absl::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": missing ", what));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " is not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": ", what, " of ", st.st_size,
                                                     " bytes exceeds the limit of ", max_bytes));
  }
  return absl::OkStatus();
}

// ReadFile with the package's wording for a missing file.
absl::StatusOr<std::string> ReadPackageFile(const std::string& path, uint64_t max_bytes,
                                            absl::string_view what) {
  auto data = ReadFile(path, max_bytes);
  if (!data.ok() && absl::IsNotFound(data.status())) {
    return absl::NotFoundError(absl::StrCat(path, ": missing ", what));
  }
  return data;
}

// The key id the (still unverified) manifest claims, or "" if it cannot be read. Used only to
// word the error: a signature from another key is a different problem from tampering.
std::string ClaimedKeyId(std::string_view manifest_bytes) {
  auto j = nlohmann::json::parse(manifest_bytes.begin(), manifest_bytes.end(), nullptr, false);
  if (j.is_object() && j.contains("signing_key_id") && j["signing_key_id"].is_string()) {
    std::string id = j["signing_key_id"].get<std::string>();
    if (id.size() <= 64) return id;
  }
  return "";
}

// True when the PNG header declares a kChipSize x kChipSize image (refuse before decoding).
bool PngHeaderIsChipSized(std::string_view png) {
  static constexpr unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (png.size() < 24 || std::memcmp(png.data(), kSig, 8) != 0 || png.substr(12, 4) != "IHDR") {
    return false;
  }
  auto be32 = [&](size_t at) {
    return (uint32_t{static_cast<uint8_t>(png[at])} << 24) |
           (uint32_t{static_cast<uint8_t>(png[at + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(png[at + 2])} << 8) |
           uint32_t{static_cast<uint8_t>(png[at + 3])};
  };
  return be32(16) == static_cast<uint32_t>(kChipSize) &&
         be32(20) == static_cast<uint32_t>(kChipSize);
}

}  // namespace

absl::StatusOr<VerifiedPackage> VerifyModelPackage(const std::string& dir,
                                                   const Ed25519PublicKey& pinned_key) {
  VerifiedPackage out;
  out.dir = dir;
  const std::string manifest_path = dir + "/" + kManifestFile;
  const std::string sig_path = dir + "/" + kSignatureFile;
  const std::string weights_path = dir + "/" + kWeightsFile;

  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat(dir, ": model package folder not found"));
  }
  // 1. Files present and within limits.
  for (auto [path, limit, what] : {std::tuple<const std::string&, uint64_t, const char*>{
                                       manifest_path, kMaxManifestBytes, "manifest"},
                                   {sig_path, kEd25519SignatureBytes, "signature"},
                                   {weights_path, kMaxWeightsBytes, "weights"}}) {
    RETURN_IF_ERROR(CheckFile(path, limit, what));
  }
  ASSIGN_OR_RETURN(auto manifest_bytes,
                   ReadPackageFile(manifest_path, kMaxManifestBytes, "manifest"));
  ASSIGN_OR_RETURN(auto signature, ReadPackageFile(sig_path, kEd25519SignatureBytes, "signature"));
  if (signature.size() != kEd25519SignatureBytes) {
    return absl::PermissionDeniedError(absl::StrCat(sig_path, ": ", signature.size(),
                                                    " bytes, expected ", kEd25519SignatureBytes));
  }

  // 2. Signature over the exact manifest bytes, against the pinned key only.
  if (absl::Status s = pinned_key.Verify(manifest_bytes, signature); !s.ok()) {
    const std::string claimed = ClaimedKeyId(manifest_bytes);
    if (!claimed.empty() && claimed != pinned_key.key_id()) {
      return absl::PermissionDeniedError(absl::StrCat(dir, ": package signed by another key (id ",
                                                      claimed, ", pinned ", pinned_key.key_id(),
                                                      ")"));
    }
    return absl::PermissionDeniedError(
        absl::StrCat(manifest_path, ": signature does not verify against the pinned key (id ",
                     pinned_key.key_id(), "); the manifest or its signature was altered"));
  }

  // 3. Strict parse of what was signed.
  ASSIGN_OR_RETURN(auto manifest, ParseManifest(manifest_bytes, manifest_path));
  if (manifest.signing_key_id != pinned_key.key_id()) {
    return absl::PermissionDeniedError(
        absl::StrCat(manifest_path, ": names signing key ", manifest.signing_key_id,
                     " but was signed by the pinned key ", pinned_key.key_id()));
  }

  // 4. Weights: read once, hash the bytes we keep (no time-of-check/time-of-use gap).
  ASSIGN_OR_RETURN(auto weights, ReadPackageFile(weights_path, kMaxWeightsBytes, "weights"));
  if (weights.size() != manifest.weights.bytes) {
    return absl::DataLossError(absl::StrCat(weights_path, ": ", weights.size(),
                                            " bytes, the manifest says ", manifest.weights.bytes));
  }
  if (const std::string sha = Sha256Hex(weights); sha != manifest.weights.sha256) {
    return absl::DataLossError(absl::StrCat(weights_path, ": sha256 ", sha,
                                            " does not match the manifest's ",
                                            manifest.weights.sha256));
  }

  // 5. Self-test chips.
  for (const SelfTestCase& c : manifest.self_test.cases) {
    const std::string path = dir + "/" + c.chip;
    ASSIGN_OR_RETURN(auto png, ReadPackageFile(path, kMaxChipBytes, "self-test chip"));
    if (const std::string sha = Sha256Hex(png); sha != c.chip_sha256) {
      return absl::DataLossError(
          absl::StrCat(path, ": sha256 ", sha, " does not match the manifest's ", c.chip_sha256));
    }
    if (!PngHeaderIsChipSized(png)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a ", kChipSize, "x", kChipSize, " PNG"));
    }
    cv::Mat bgr;
    try {
      bgr = cv::imdecode(cv::Mat(1, static_cast<int>(png.size()), CV_8UC1, png.data()),
                         cv::IMREAD_COLOR);
    } catch (const cv::Exception&) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode PNG"));
    }
    if (bgr.empty() || bgr.rows != kChipSize || bgr.cols != kChipSize || bgr.type() != CV_8UC3) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode as a ", kChipSize, "x",
                                                     kChipSize, " 8-bit colour PNG"));
    }
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    out.chips.push_back(std::move(rgb));
  }

  out.manifest = std::move(manifest);
  out.manifest_bytes = std::move(manifest_bytes);
  out.weights = std::move(weights);
  return out;
}

absl::Status RunSelfTest(const VerifiedPackage& package, FaceResNet& net, float* max_distance,
                         std::optional<double> tolerance_override) {
  const auto& cases = package.manifest.self_test.cases;
  if (package.chips.size() != cases.size() || cases.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(package.dir, ": self-test has ",
                                                      package.chips.size(), " chips for ",
                                                      cases.size(), " cases"));
  }
  const std::vector<Embedding> got = net.Embed(package.chips);
  if (got.size() != cases.size()) {
    return absl::InternalError(absl::StrCat(package.dir, ": self-test: the network returned ",
                                            got.size(), " embeddings for ", cases.size(),
                                            " chips"));
  }
  float worst = 0.f;
  size_t worst_index = 0;
  bool all_finite = true;
  for (size_t i = 0; i < cases.size(); ++i) {
    const float d = EuclideanDistance(got[i], cases[i].embedding);
    if (!std::isfinite(d)) {
      all_finite = false;
      worst_index = i;
      break;
    }
    if (d > worst) {
      worst = d;
      worst_index = i;
    }
  }
  if (max_distance) *max_distance = all_finite ? worst : INFINITY;
  const double tolerance = tolerance_override.value_or(package.manifest.self_test.tolerance);
  if (!all_finite) {
    return absl::DataLossError(absl::StrCat(package.dir,
                                            ": self-test failed: ", cases[worst_index].chip,
                                            " gives a non-finite embedding"));
  }
  if (!(worst <= tolerance)) {
    return absl::DataLossError(absl::StrCat(
        package.dir, ": self-test failed: ", cases[worst_index].chip, " embeds at distance ", worst,
        " from the packaged embedding (tolerance ", tolerance, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedModel> LoadVerifiedModel(const std::string& dir,
                                              const std::string& pinned_key_pem_path,
                                              EmbeddingBackend backend) {
  ASSIGN_OR_RETURN(auto key, Ed25519PublicKey::LoadPem(pinned_key_pem_path));
  return LoadVerifiedModel(dir, key, backend);
}

}  // namespace fedface
