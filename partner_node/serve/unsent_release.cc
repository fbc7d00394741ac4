#include "partner_node/serve/unsent_release.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace fedface::partner {
namespace {

// Removes the scratch folder however the build ends.
class ScratchDir {
 public:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

absl::StatusOr<std::string> BuildUnsentRelease(const EgressGuardConfig& config,
                                               std::string_view vendor,
                                               const fedface::v1::RunEvaluationRequest& request,
                                               const EvaluationAggregate& aggregate,
                                               const std::string& scratch_parent) {
  std::error_code ec;
  std::filesystem::create_directories(scratch_parent, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(scratch_parent, ": cannot create: ", ec.message()));
  }
  std::string templ = (std::filesystem::path(scratch_parent) / ".unsent-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat(templ, ": cannot create a scratch folder: ", std::strerror(errno)));
  }
  ScratchDir scratch(templ);
  // A budget that can pay for exactly this one release.
  const double limit = config.dp.enabled ? config.dp.epsilon_per_release : 0.0;
  absl::StatusOr<std::unique_ptr<PrivacyBudget>> budget =
      PrivacyBudget::Open(scratch.path() + "/budget.db", limit);
  if (!budget.ok()) return absl::InternalError(budget.status().message());
  absl::StatusOr<std::unique_ptr<EgressLedger>> ledger =
      EgressLedger::Open(scratch.path() + "/ledger.db", EgressLedger::OpenMode::kCreateIfMissing);
  if (!ledger.ok()) return absl::InternalError(ledger.status().message());
  absl::StatusOr<std::unique_ptr<EgressGuard>> guard =
      EgressGuard::Create(config, budget->get(), ledger->get(), MakeSecureNoiseSource());
  if (!guard.ok()) return guard.status();
  absl::StatusOr<std::string> bytes = (*guard)->ReleaseEvaluation(vendor, request, aggregate);
  // Close the stores before the folder goes.
  guard->reset();
  ledger->reset();
  budget->reset();
  return bytes;
}

}  // namespace fedface::partner
