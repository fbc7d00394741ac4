#include "core/package/package_writer.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/package/durable_write.h"
#include "core/package/package_verifier.h"

namespace fedface {
namespace {

namespace fs = std::filesystem;

// Removes the half-built folder unless released; the final package appears only by rename.
class TempDirGuard {
 public:
  explicit TempDirGuard(std::string dir) : dir_(std::move(dir)) {}
  ~TempDirGuard() {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  void Release() { dir_.clear(); }

 private:
  std::string dir_;
};

absl::StatusOr<std::string> EncodeChipPng(const cv::Mat& rgb, size_t index) {
  if (rgb.empty() || rgb.rows != kChipSize || rgb.cols != kChipSize || rgb.type() != CV_8UC3) {
    return absl::InvalidArgumentError(absl::StrCat("self-test chip ", index, ": expected ",
                                                   kChipSize, "x", kChipSize, " CV_8UC3 RGB, got ",
                                                   rgb.cols, "x", rgb.rows, " type ", rgb.type()));
  }
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);  // imencode expects OpenCV's BGR order
  std::vector<uchar> png;
  if (!cv::imencode(".png", bgr, png)) {
    return absl::InternalError(absl::StrCat("self-test chip ", index, ": PNG encoding failed"));
  }
  if (png.size() > kMaxChipBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("self-test chip ", index, ": PNG of ",
                                                     png.size(), " bytes exceeds the limit of ",
                                                     kMaxChipBytes));
  }
  return std::string(png.begin(), png.end());
}

}  // namespace

absl::StatusOr<ModelManifest> WriteModelPackage(const std::string& out_dir,
                                                const PackageFields& fields,
                                                const std::string& weights,
                                                const std::vector<SelfTestChip>& self_test,
                                                const Ed25519PrivateKey& key) {
  if (out_dir.empty()) return absl::InvalidArgumentError("package output folder is empty");
  std::string target = fs::path(out_dir).lexically_normal().string();
  while (target.size() > 1 && target.back() == '/') target.pop_back();  // "pkg/" -> "pkg"
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target, ec))) {
    return absl::AlreadyExistsError(absl::StrCat(target, ": already exists; not overwriting"));
  }
  if (weights.empty() || weights.size() > kMaxWeightsBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights of ", weights.size(), " bytes; expected 1 to ", kMaxWeightsBytes));
  }
  if (self_test.empty() || self_test.size() > kMaxSelfTestCases) {
    return absl::InvalidArgumentError(
        absl::StrCat(self_test.size(), " self-test chips; expected 1 to ", kMaxSelfTestCases));
  }

  ModelManifest m;
  m.model_id = fields.model_id;
  m.version = fields.version;
  m.distance.default_threshold = fields.default_threshold;
  m.weights.bytes = weights.size();
  m.weights.sha256 = Sha256Hex(weights);
  m.self_test.tolerance = fields.self_test_tolerance;
  m.source = fields.source;
  m.signing_key_id = key.key_id();
  m.created_at = fields.created_at.empty() ? UtcNowIso8601() : fields.created_at;
  m.int8_calibration = fields.int8_calibration;

  std::vector<std::string> pngs;
  for (size_t i = 0; i < self_test.size(); ++i) {
    ASSIGN_OR_RETURN(auto png, EncodeChipPng(self_test[i].chip_rgb, i));
    SelfTestCase c;
    c.chip = absl::StrCat(kSelfTestDir, "/chip", i, ".png");
    c.chip_sha256 = Sha256Hex(png);
    c.embedding = self_test[i].embedding;
    m.self_test.cases.push_back(std::move(c));
    pngs.push_back(std::move(png));
  }
  RETURN_IF_ERROR(ValidateManifest(m));
  const std::string manifest_bytes = SerializeManifest(m);
  if (manifest_bytes.size() > kMaxManifestBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("manifest of ", manifest_bytes.size(), " bytes exceeds the limit"));
  }
  ASSIGN_OR_RETURN(auto signature, key.Sign(manifest_bytes));

  const fs::path parent = fs::path(target).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) return absl::UnavailableError(absl::StrCat(parent.string(), ": ", ec.message()));
  }
  std::string tmp = target + ".tmp-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(target, ": cannot create a temporary folder: ", std::strerror(errno)));
  }
  TempDirGuard guard(tmp);
  ::chmod(tmp.c_str(), 0755);  // mkdtemp makes it 0700; partners' service users read packages
  using package_internal::WriteFileDurably;
  RETURN_IF_ERROR(WriteFileDurably(tmp + "/" + kWeightsFile, weights, 0644, false));
  const std::string chip_dir = tmp + "/" + kSelfTestDir;
  if (::mkdir(chip_dir.c_str(), 0755) != 0) {
    return absl::UnavailableError(absl::StrCat(chip_dir, ": ", std::strerror(errno)));
  }
  for (size_t i = 0; i < pngs.size(); ++i) {
    RETURN_IF_ERROR(WriteFileDurably(tmp + "/" + m.self_test.cases[i].chip, pngs[i], 0644, false));
  }
  RETURN_IF_ERROR(WriteFileDurably(tmp + "/" + kManifestFile, manifest_bytes, 0644, false));
  RETURN_IF_ERROR(WriteFileDurably(tmp + "/" + kSignatureFile, signature, 0644, false));
  // Never publish a package that would not verify (catches encoder or filesystem surprises).
  auto verified = VerifyModelPackage(tmp, key.public_key());
  if (!verified.ok()) {
    return absl::InternalError(absl::StrCat("package written to ", tmp,
                                            " does not verify: ", verified.status().message()));
  }
  RETURN_IF_ERROR(SyncDirectory(tmp));
  // RENAME_NOREPLACE: a folder that appeared meanwhile (even an empty one) is not replaced.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    if (err == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(target, ": already exists; not overwriting"));
    }
    return absl::UnavailableError(
        absl::StrCat(target, ": cannot move the package into place: ", std::strerror(err)));
  }
  guard.Release();
  RETURN_IF_ERROR(SyncDirectory(parent.empty() ? "." : parent.string()));
  return m;
}

}  // namespace fedface
