#include "partner_node/egress/evaluation_fingerprint.h"

#include "absl/strings/str_cat.h"
#include "core/common/sha256.h"

namespace fedface::partner {
namespace {

void AppendCounts(const metrics::ScoreHistogram& h, std::string* out) {
  absl::StrAppend(out, "|", h.counts().size());
  for (double c : h.counts()) absl::StrAppend(out, ",", c);
}

}  // namespace

std::string EvaluationFingerprint(const EvaluationAggregate& a) {
  const CohortCounts& c = a.cohort;
  std::string text =
      absl::StrCat("fedface-evaluation-v1|", static_cast<int>(a.protocol), "|", c.subjects, ",",
                   c.mated_subjects, ",", c.non_mated_subjects, ",", c.images, ",",
                   c.failures_to_enrol, ",", c.mated_comparisons, ",", c.non_mated_comparisons);
  AppendCounts(a.genuine, &text);
  AppendCounts(a.impostor, &text);
  if (a.bounded) {
    absl::StrAppend(&text, "|bounded ", a.bounded->contribution_bound());
    AppendCounts(a.bounded->genuine(), &text);
    AppendCounts(a.bounded->impostor(), &text);
  }
  return Sha256Hex(text);
}

}  // namespace fedface::partner
