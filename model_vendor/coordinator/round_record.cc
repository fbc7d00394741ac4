#include "model_vendor/coordinator/round_record.h"

#include <array>
#include <utility>

namespace fedface::vendor {
namespace {

constexpr std::array<std::pair<PartnerStatus, const char*>, 6> kStatusNames = {{
    {PartnerStatus::kContributed, "contributed"},
    {PartnerStatus::kWithheld, "withheld"},
    {PartnerStatus::kRefused, "refused"},
    {PartnerStatus::kUnreachable, "unreachable"},
    {PartnerStatus::kTimedOut, "timed_out"},
    {PartnerStatus::kFailed, "failed"},
}};

}  // namespace

const char* PartnerStatusName(PartnerStatus status) {
  for (const auto& [s, name] : kStatusNames) {
    if (s == status) return name;
  }
  return "failed";
}

std::optional<PartnerStatus> PartnerStatusFromName(const std::string& name) {
  for (const auto& [s, n] : kStatusNames) {
    if (name == n) return s;
  }
  return std::nullopt;
}

int ContributedCount(const RoundRecord& record) {
  int n = 0;
  for (const PartnerOutcome& o : record.outcomes) {
    if (o.status == PartnerStatus::kContributed) ++n;
  }
  return n;
}

bool QuorumMet(const RoundRecord& record) { return ContributedCount(record) >= record.quorum; }

}  // namespace fedface::vendor
