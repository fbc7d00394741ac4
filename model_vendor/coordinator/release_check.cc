#include "model_vendor/coordinator/release_check.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/metrics/release_derivation.h"
#include "core/metrics/score_histogram.h"

namespace fedface::vendor {
namespace {

using fedface::v1::Suppression;

// A value the partner sent, quotable in a report line: printable ASCII, at most 64 characters.
std::string Quoted(const std::string& value) {
  std::string out = "'";
  for (char c : value.substr(0, 64)) out.push_back(c >= ' ' && c <= '~' ? c : '?');
  return out + (value.size() > 64 ? "...'" : "'");
}

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("release field ", field, ": ", why));
}

absl::Status CheckSuppression(Suppression s, const std::string& field) {
  if (s == fedface::v1::SUPPRESSION_UNSPECIFIED || !fedface::v1::Suppression_IsValid(s)) {
    return Bad(field, "no suppression state (released or why not)");
  }
  return absl::OkStatus();
}

absl::Status CheckRateValue(double v, const std::string& field) {
  if (!std::isfinite(v) || v < 0 || v > 1) return Bad(field, absl::StrCat(v, " is not in [0, 1]"));
  return absl::OkStatus();
}

absl::Status CheckFinite(double v, const std::string& field) {
  if (!std::isfinite(v)) return Bad(field, "not a finite number");
  return absl::OkStatus();
}

absl::Status CheckRate(const fedface::v1::Rate& r, const std::string& field) {
  RETURN_IF_ERROR(CheckSuppression(r.suppression(), field));
  if (r.suppression() == fedface::v1::SUPPRESSION_NONE) return CheckRateValue(r.value(), field);
  return absl::OkStatus();
}

absl::Status CheckFnmr(const fedface::v1::FnmrAtFmr& m, const std::string& field) {
  RETURN_IF_ERROR(CheckSuppression(m.suppression(), field));
  if (m.suppression() != fedface::v1::SUPPRESSION_NONE) return absl::OkStatus();
  for (auto [v, name] : {std::pair{m.fnmr(), ".fnmr"}, std::pair{m.fmr(), ".fmr"},
                         std::pair{m.fmr_target(), ".fmr_target"}}) {
    RETURN_IF_ERROR(CheckRateValue(v, field + name));
  }
  return CheckFinite(m.threshold(), field + ".threshold");
}

absl::Status CheckFnir(const fedface::v1::FnirAtFpir& m, const std::string& field) {
  RETURN_IF_ERROR(CheckSuppression(m.suppression(), field));
  if (m.suppression() != fedface::v1::SUPPRESSION_NONE) return absl::OkStatus();
  for (auto [v, name] : {std::pair{m.fnir(), ".fnir"}, std::pair{m.fpir(), ".fpir"},
                         std::pair{m.fpir_target(), ".fpir_target"}}) {
    RETURN_IF_ERROR(CheckRateValue(v, field + name));
  }
  return CheckFinite(m.threshold(), field + ".threshold");
}

// Layout 1: kScoreBinCount counts >= 0. Layout 2: kLayoutV2Bins raw noisy integers (negative
// allowed: nobody clamped them).
absl::Status CheckHistogram(const fedface::v1::ScoreHistogram& h, int layout,
                            const std::string& field) {
  RETURN_IF_ERROR(CheckSuppression(h.suppression(), field));
  if (h.suppression() != fedface::v1::SUPPRESSION_NONE) {
    if (h.counts_size() != 0) return Bad(field, "withheld but carries counts");
    return absl::OkStatus();
  }
  const bool v2 = layout == metrics::kBinLayoutV2;
  const int bins = v2 ? metrics::kLayoutV2Bins : metrics::kScoreBinCount;
  if (h.counts_size() != bins) {
    return Bad(field, absl::StrCat(h.counts_size(), " bins, bin layout ", layout, " has ", bins));
  }
  for (int k = 0; k < h.counts_size(); ++k) {
    const double v = h.counts(k);
    if (!std::isfinite(v) || (v2 ? v != std::round(v) : v < 0)) {
      return Bad(field, absl::StrCat("bin ", k, " holds ", h.counts(k)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckBand(const fedface::v1::CountBand& b, const std::string& field) {
  RETURN_IF_ERROR(CheckSuppression(b.suppression(), field));
  if (b.suppression() == fedface::v1::SUPPRESSION_NONE && b.below() < b.at_least()) {
    return Bad(field, "band ends before it starts");
  }
  return absl::OkStatus();
}

// Layout 2 states its noise (fields 4-7) and the vendor's intervals rest on it: the scales must be
// those of the stated bounds with the two sides' epsilons adding up to at most the release's.
// Layout 1 states none.
absl::Status CheckLayoutPrivacy(const fedface::v1::EvaluationRelease& r, int layout) {
  const fedface::v1::PrivacyAccounting& p = r.privacy();
  if (layout != metrics::kBinLayoutV2) {
    if (p.genuine_contribution_bound() != 0 || p.impostor_contribution_bound() != 0 ||
        p.genuine_noise_scale() != 0 || p.impostor_noise_scale() != 0) {
      return Bad("privacy", "a bin layout 1 release states layout-2 noise parameters");
    }
    return absl::OkStatus();
  }
  if (r.protocol() != fedface::v1::EVALUATION_PROTOCOL_VERIFICATION || !p.differential_privacy()) {
    return Bad("bin_edges_version", "layout 2 is for verification under differential privacy");
  }
  if (p.genuine_contribution_bound() < 1 || p.impostor_contribution_bound() < 2 ||
      p.impostor_contribution_bound() % 2 != 0) {
    return Bad("privacy", "layout 2 needs c_g >= 1 and an even c_i >= 2");
  }
  const double gs = p.genuine_noise_scale(), is = p.impostor_noise_scale();
  if (!std::isfinite(gs) || !(gs > 0) || !std::isfinite(is) || !(is > 0) ||
      !std::isfinite(p.epsilon()) || !(p.epsilon() > 0)) {
    return Bad("privacy", "layout 2 needs positive epsilon and noise scales");
  }
  // epsilon_g = c_g / scale_g, epsilon_i = 3 floor(c_i / 2) / scale_i (differential_privacy.h).
  const double spent =
      p.genuine_contribution_bound() / gs + 3.0 * (p.impostor_contribution_bound() / 2) / is;
  if (spent > p.epsilon() * (1 + 1e-9)) {
    return Bad("privacy", absl::StrCat("noise scales that spend epsilon ", spent,
                                       ", more than the release's ", p.epsilon()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRelease(const fedface::v1::EvaluationRelease& r, const RoundRequest& request) {
  if (r.round_id() != request.round_id) {
    return Bad("round_id", absl::StrCat(Quoted(r.round_id()), " answers another round"));
  }
  if (r.model_version() != request.model_version) {
    return Bad("model_version", absl::StrCat(Quoted(r.model_version()), ", asked for '",
                                             request.model_version, "'"));
  }
  if (r.protocol() != request.protocol) return Bad("protocol", "not the protocol asked for");
  const int layout = static_cast<int>(r.bin_edges_version());
  if (r.bin_edges_version() != static_cast<uint32_t>(metrics::kScoreBinEdgesVersion) &&
      r.bin_edges_version() != static_cast<uint32_t>(metrics::kBinLayoutV2)) {
    return Bad("bin_edges_version",
               absl::StrCat(r.bin_edges_version(), ", this vendor pools versions 1 and 2"));
  }
  RETURN_IF_ERROR(CheckLayoutPrivacy(r, layout));
  const fedface::v1::Counts& c = r.counts();
  for (auto [band, name] :
       {std::pair{&c.subjects(), "counts.subjects"}, std::pair{&c.images(), "counts.images"},
        std::pair{&c.mated_comparisons(), "counts.mated_comparisons"},
        std::pair{&c.non_mated_comparisons(), "counts.non_mated_comparisons"}}) {
    RETURN_IF_ERROR(CheckBand(*band, name));
  }
  RETURN_IF_ERROR(CheckRate(r.failure_to_enrol_rate(), "failure_to_enrol_rate"));
  if (request.protocol == fedface::v1::EVALUATION_PROTOCOL_VERIFICATION) {
    for (auto [m, name] : {std::pair{&r.fnmr_at_fmr_1e2(), "fnmr_at_fmr_1e2"},
                           std::pair{&r.fnmr_at_fmr_1e3(), "fnmr_at_fmr_1e3"},
                           std::pair{&r.fnmr_at_fmr_1e4(), "fnmr_at_fmr_1e4"}}) {
      RETURN_IF_ERROR(CheckFnmr(*m, name));
    }
    RETURN_IF_ERROR(CheckSuppression(r.eer().suppression(), "eer"));
    if (r.eer().suppression() == fedface::v1::SUPPRESSION_NONE) {
      RETURN_IF_ERROR(CheckRateValue(r.eer().eer(), "eer.eer"));
      RETURN_IF_ERROR(CheckFinite(r.eer().threshold(), "eer.threshold"));
    }
    RETURN_IF_ERROR(CheckRate(r.roc_auc(), "roc_auc"));
  } else {
    RETURN_IF_ERROR(CheckRate(r.rank1_identification_rate(), "rank1_identification_rate"));
    for (auto [m, name] : {std::pair{&r.fnir_at_fpir_1e2(), "fnir_at_fpir_1e2"},
                           std::pair{&r.fnir_at_fpir_1e1(), "fnir_at_fpir_1e1"}}) {
      RETURN_IF_ERROR(CheckFnir(*m, name));
    }
  }
  RETURN_IF_ERROR(CheckHistogram(r.genuine_histogram(), layout, "genuine_histogram"));
  RETURN_IF_ERROR(CheckHistogram(r.impostor_histogram(), layout, "impostor_histogram"));
  if (r.has_throughput()) {
    const auto& t = r.throughput();
    RETURN_IF_ERROR(CheckSuppression(t.suppression(), "throughput"));
    if (t.suppression() == fedface::v1::SUPPRESSION_NONE &&
        (!std::isfinite(t.embeddings_per_second()) || t.embeddings_per_second() < 0)) {
      return Bad("throughput.embeddings_per_second", "not a non-negative number");
    }
  }
  if (!std::isfinite(r.privacy().epsilon()) || r.privacy().epsilon() < 0) {
    return Bad("privacy.epsilon", "not a non-negative number");
  }
  return absl::OkStatus();
}

PartnerStatus ClassifyRelease(const fedface::v1::EvaluationRelease& release, std::string* reason) {
  const auto& g = release.genuine_histogram();
  const auto& i = release.impostor_histogram();
  const auto side = [](const fedface::v1::ScoreHistogram& h) {
    return h.suppression() == fedface::v1::SUPPRESSION_NONE;
  };
  if (release.counts().subjects().suppression() == fedface::v1::SUPPRESSION_COHORT_BELOW_K) {
    *reason =
        "withheld by the partner's k-minimum rule: its gallery has fewer than k subjects, so it "
        "released nothing";
    return PartnerStatus::kWithheld;
  }
  if (!side(g) || !side(i)) {
    const bool genuine_missing = !side(g);
    *reason = absl::StrCat(genuine_missing ? "genuine" : "impostor", " score histogram ",
                           SuppressionReason(genuine_missing ? g.suppression() : i.suppression()));
    return PartnerStatus::kWithheld;
  }
  // Layout 2's raw noisy counts are pooled as they are (a partner's total near zero, even
  // negative, is noise around a small count; dropping it would bias the pool).
  if (release.bin_edges_version() == static_cast<uint32_t>(metrics::kBinLayoutV2)) {
    reason->clear();
    return PartnerStatus::kContributed;
  }
  double g_total = 0, i_total = 0;
  for (double v : g.counts()) g_total += v;
  for (double v : i.counts()) i_total += v;
  if (!(g_total > 0) || !(i_total > 0)) {
    *reason = absl::StrCat("released an empty ", g_total > 0 ? "impostor" : "genuine",
                           " score histogram: nothing to pool");
    return PartnerStatus::kWithheld;
  }
  reason->clear();
  return PartnerStatus::kContributed;
}

std::string LayoutTwoPrivacyText(const fedface::v1::PrivacyAccounting& p) {
  return absl::StrFormat(
      "epsilon %g, bin layout 2: at most %u mated and %u impostor comparisons per person, noise "
      "scales %.3g (genuine) and %.3g (impostor) per bin",
      p.epsilon(), p.genuine_contribution_bound(), p.impostor_contribution_bound(),
      p.genuine_noise_scale(), p.impostor_noise_scale());
}

std::string SuppressionReason(fedface::v1::Suppression suppression) {
  switch (suppression) {
    case fedface::v1::SUPPRESSION_NONE:
      return "released";
    case fedface::v1::SUPPRESSION_COHORT_BELOW_K:
      return "withheld by the partner: fewer than k subjects behind it (k-minimum rule)";
    case fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED:
      return "withheld: too few impostor comparisons to measure a rate this small (needs at "
             "least 3/target)";
    case fedface::v1::SUPPRESSION_NO_MATED:
      return "withheld: no genuine comparisons";
    case fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL:
      return "not part of this protocol";
    case fedface::v1::SUPPRESSION_NOT_MEASURED:
      return "not measured by the partner";
    case fedface::v1::SUPPRESSION_NOT_PRIVATE:
      return "withheld under differential privacy: one person could move it beyond what the "
             "noise covers";
    case fedface::v1::SUPPRESSION_TOO_NOISY:
      return "withheld under differential privacy: at this cohort size the noise would swamp it";
    default:
      return "withheld without a reason";
  }
}

const char* SuppressionCode(fedface::v1::Suppression suppression) {
  switch (suppression) {
    case fedface::v1::SUPPRESSION_NONE:
      return "none";
    case fedface::v1::SUPPRESSION_COHORT_BELOW_K:
      return "cohort_below_k";
    case fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED:
      return "insufficient_non_mated";
    case fedface::v1::SUPPRESSION_NO_MATED:
      return "no_mated";
    case fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL:
      return "not_in_protocol";
    case fedface::v1::SUPPRESSION_NOT_MEASURED:
      return "not_measured";
    case fedface::v1::SUPPRESSION_NOT_PRIVATE:
      return "not_private";
    case fedface::v1::SUPPRESSION_TOO_NOISY:
      return "too_noisy";
    default:
      return "unspecified";
  }
}

}  // namespace fedface::vendor
