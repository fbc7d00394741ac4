#include "partner_node/egress/release_shape.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/unknown_field_set.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/metrics/release_derivation.h"
#include "core/metrics/score_histogram.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_config.h"
#include "partner_node/egress/release_composer.h"
#include "partner_node/egress/vendor_request.h"

namespace fedface::partner {
namespace {

namespace pb = ::google::protobuf;
using fedface::v1::Suppression;

// The only string fields that may leave, and the characters each may hold.
constexpr char kRoundIdField[] = "fedface.v1.EvaluationRelease.round_id";
constexpr char kModelVersionField[] = "fedface.v1.EvaluationRelease.model_version";
constexpr char kLedgerHeadHashField[] = "fedface.v1.LedgerHead.entry_hash";
// The only repeated field that may leave.
constexpr char kHistogramCountsField[] = "fedface.v1.ScoreHistogram.counts";

absl::Status Refuse(const std::string& type, const std::string& why) {
  return absl::PermissionDeniedError(
      absl::StrCat("egress guard: refusing to send ", type, ": ", why));
}

// The bin layout of the release being checked (bin_edges_version 1 or 2).
struct Layout {
  int version = 1;
  int bins = metrics::kScoreBinCount;
  bool negative_counts = false;  // layout 2: raw noisy counts
};

absl::Status CheckShape(const pb::Message& m, const std::string& root_type, int depth,
                        const Layout& layout) {
  if (depth > 4) return Refuse(root_type, "message nesting too deep");
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  if (d->file()->package() != "fedface.v1") {
    return Refuse(root_type, absl::StrCat("field of foreign type ", d->full_name()));
  }
  if (!r->GetUnknownFields(m).empty()) return Refuse(root_type, "unknown fields");
  const pb::FieldDescriptor* suppression = d->FindFieldByName("suppression");
  Suppression state = fedface::v1::SUPPRESSION_NONE;
  if (suppression != nullptr) {
    state = static_cast<Suppression>(r->GetEnumValue(m, suppression));
    if (state == fedface::v1::SUPPRESSION_UNSPECIFIED) {
      return Refuse(root_type, absl::StrCat(d->full_name(), " has no suppression state"));
    }
  }
  for (int k = 0; k < d->field_count(); ++k) {
    const pb::FieldDescriptor* f = d->field(k);
    const std::string name(f->full_name());
    if (f->is_map()) return Refuse(root_type, absl::StrCat("map field ", name));
    if (f->is_repeated()) {
      if (name != kHistogramCountsField) {
        return Refuse(root_type, absl::StrCat("repeated field ", name));
      }
      const int n = r->FieldSize(m, f);
      const int expected = state == fedface::v1::SUPPRESSION_NONE ? layout.bins : 0;
      if (n != expected) {
        return Refuse(root_type, absl::StrCat(name, " has ", n, " values, expected ", expected,
                                              " (bin layout ", layout.version, ")"));
      }
      for (int j = 0; j < n; ++j) {
        const double v = r->GetRepeatedDouble(m, f, j);
        if (!std::isfinite(v) || (v < 0 && !layout.negative_counts)) {
          return Refuse(root_type, absl::StrCat(name, " holds a negative or non-finite count"));
        }
      }
      continue;
    }
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        const std::string v = r->GetString(m, f);
        const bool ok = name == kRoundIdField          ? IsValidRoundId(v)
                        : name == kModelVersionField   ? IsValidModelVersion(v)
                        : name == kLedgerHeadHashField ? IsSha256Hex(v)
                                                       : false;
        if (!ok) return Refuse(root_type, absl::StrCat("string field ", name));
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
        if (!r->HasField(m, f)) return Refuse(root_type, absl::StrCat(name, " is missing"));
        RETURN_IF_ERROR(CheckShape(r->GetMessage(m, f), root_type, depth + 1, layout));
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        if (!std::isfinite(r->GetDouble(m, f))) {
          return Refuse(root_type, absl::StrCat(name, " is not finite"));
        }
        break;
      default:
        break;  // enums, integers, bools: typed values the schema defines
    }
  }
  return absl::OkStatus();
}

// ---- Values on their grid ----

bool OnGrid(double x, double step) { return std::isfinite(x) && x == std::round(x / step) * step; }
bool IsRate(double x, double step) { return x >= 0 && x <= 1 && OnGrid(x, step); }
bool IsBinEdge(double x) {
  return std::find(metrics::kScoreBinEdges.begin(), metrics::kScoreBinEdges.end(), x) !=
         metrics::kScoreBinEdges.end();
}

// A message that is withheld carries no value: every double and integer field other than the
// listed targets is 0.
absl::Status CheckWithheldEmpty(const pb::Message& m, const std::string& root) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int k = 0; k < d->field_count(); ++k) {
    const pb::FieldDescriptor* f = d->field(k);
    if (f->is_repeated() || f->name() == "fmr_target" || f->name() == "fpir_target") continue;
    const bool zero = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE ? r->GetDouble(m, f) == 0
                      : f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64
                          ? r->GetUInt64(m, f) == 0
                          : true;
    if (!zero) return Refuse(root, absl::StrCat(f->full_name(), " is set on a withheld value"));
  }
  return absl::OkStatus();
}

template <typename M>
bool Released(const M& m) {
  return m.suppression() == fedface::v1::SUPPRESSION_NONE;
}

absl::Status CheckBand(const fedface::v1::CountBand& b, const std::string& root) {
  if (!Released(b)) return CheckWithheldEmpty(b, root);
  if (b.at_least() > static_cast<uint64_t>(INT64_MAX)) {
    return Refuse(root, "a count band is not a band of the ladder 0, 10, 20, 50, 100, ...");
  }
  const Band on_ladder = CountBandOf(static_cast<int64_t>(b.at_least()));
  if (on_ladder.at_least != b.at_least() || on_ladder.below != b.below()) {
    return Refuse(root, "a count band is not a band of the ladder 0, 10, 20, 50, 100, ...");
  }
  return absl::OkStatus();
}

// Layout 1: a bin edge; layout 2 (interpolated): on kRateStep in [0, kLayoutV2Top].
bool IsThreshold(double x, const Layout& layout) {
  if (layout.version == metrics::kBinLayoutV2) {
    return x >= 0 && x <= metrics::kLayoutV2Top && OnGrid(x, kRateStep);
  }
  return IsBinEdge(x);
}

template <typename M>
absl::Status CheckRateAtTarget(const M& m, double achieved_false, double miss, double threshold,
                               const Layout& layout, const std::string& root, const char* name) {
  if (!Released(m)) return CheckWithheldEmpty(m, root);
  if (!IsRate(achieved_false, kRateStep) || !IsRate(miss, kRateStep) ||
      !IsThreshold(threshold, layout)) {
    return Refuse(root, absl::StrCat(name, " is off its grid (rates in steps of ", kRateStep,
                                     ", thresholds at bin edges of layout 1 or on that grid in "
                                     "layout 2)"));
  }
  return absl::OkStatus();
}

absl::Status CheckRate(const fedface::v1::Rate& rate, double step, const std::string& root,
                       const char* name) {
  if (!Released(rate)) return CheckWithheldEmpty(rate, root);
  if (!IsRate(rate.value(), step)) {
    return Refuse(root, absl::StrCat(name, " is off its grid (steps of ", step, " in [0, 1])"));
  }
  return absl::OkStatus();
}

// Layout 1 carries no layout-2 noise parameters; layout 2 carries exactly those the partner's
// configuration implies (a vendor's request cannot move a bound, the split or a scale).
absl::Status CheckPrivacyOfLayout(const fedface::v1::EvaluationRelease& r, const Layout& layout,
                                  const DifferentialPrivacyConfig* dp, const std::string& root) {
  const fedface::v1::PrivacyAccounting& p = r.privacy();
  if (layout.version != metrics::kBinLayoutV2) {
    if (p.genuine_contribution_bound() != 0 || p.impostor_contribution_bound() != 0 ||
        p.genuine_noise_scale() != 0 || p.impostor_noise_scale() != 0) {
      return Refuse(root, "a bin layout 1 release carries layout-2 noise parameters");
    }
    return absl::OkStatus();
  }
  if (r.protocol() != fedface::v1::EVALUATION_PROTOCOL_VERIFICATION || !p.differential_privacy()) {
    return Refuse(root, "bin layout 2 is for verification under differential privacy only");
  }
  if (dp == nullptr) {
    return Refuse(root,
                  "a bin layout 2 release is checked against the partner's differential privacy "
                  "configuration, and none was given");
  }
  const fedface::v1::PrivacyAccounting want = LayoutV2Accounting(
      *dp, r.failure_to_enrol_rate().suppression() == fedface::v1::SUPPRESSION_NONE);
  const pb::Descriptor* d = want.GetDescriptor();
  const pb::Reflection* reflection = want.GetReflection();
  for (int k = 0; k < d->field_count(); ++k) {
    const pb::FieldDescriptor* f = d->field(k);
    const bool same = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE
                          ? reflection->GetDouble(p, f) == reflection->GetDouble(want, f)
                      : f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32
                          ? reflection->GetUInt32(p, f) == reflection->GetUInt32(want, f)
                      : f->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL
                          ? reflection->GetBool(p, f) == reflection->GetBool(want, f)
                          : false;
    if (!same) {
      return Refuse(
          root, absl::StrCat(f->full_name(), " is not what the partner's configuration implies"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOnGrid(const fedface::v1::EvaluationRelease& r, const Layout& layout,
                         const DifferentialPrivacyConfig* dp, const std::string& root) {
  std::vector<absl::Status> checks = {
      CheckBand(r.counts().subjects(), root),
      CheckBand(r.counts().images(), root),
      CheckBand(r.counts().mated_comparisons(), root),
      CheckBand(r.counts().non_mated_comparisons(), root),
      CheckRate(r.failure_to_enrol_rate(), kFailureRateStep, root, "failure_to_enrol_rate"),
      CheckRate(r.roc_auc(), kRateStep, root, "roc_auc"),
      CheckRate(r.rank1_identification_rate(), kRateStep, root, "rank1_identification_rate"),
  };
  const std::pair<const fedface::v1::FnmrAtFmr*, double> fnmr[] = {
      {&r.fnmr_at_fmr_1e2(), 1e-2}, {&r.fnmr_at_fmr_1e3(), 1e-3}, {&r.fnmr_at_fmr_1e4(), 1e-4}};
  for (const auto& [m, target] : fnmr) {
    if (m->fmr_target() != target) return Refuse(root, "an FNMR at FMR has another target");
    checks.push_back(
        CheckRateAtTarget(*m, m->fmr(), m->fnmr(), m->threshold(), layout, root, "fnmr_at_fmr"));
  }
  const std::pair<const fedface::v1::FnirAtFpir*, double> fnir[] = {{&r.fnir_at_fpir_1e2(), 1e-2},
                                                                    {&r.fnir_at_fpir_1e1(), 1e-1}};
  for (const auto& [m, target] : fnir) {
    if (m->fpir_target() != target) return Refuse(root, "an FNIR at FPIR has another target");
    checks.push_back(
        CheckRateAtTarget(*m, m->fpir(), m->fnir(), m->threshold(), layout, root, "fnir_at_fpir"));
  }
  const fedface::v1::EqualErrorRate& eer = r.eer();
  if (!Released(eer)) {
    checks.push_back(CheckWithheldEmpty(eer, root));
  } else if (!IsRate(eer.eer(), kRateStep) || !OnGrid(eer.threshold(), kRateStep) ||
             eer.threshold() < 0) {
    return Refuse(root, "eer is off its grid");
  }
  for (const fedface::v1::ScoreHistogram* h : {&r.genuine_histogram(), &r.impostor_histogram()}) {
    for (double v : h->counts()) {
      if (!OnGrid(v, 1.0)) return Refuse(root, "a histogram count is not a whole number");
    }
  }
  const fedface::v1::Throughput& t = r.throughput();
  if (!Released(t)) {
    checks.push_back(CheckWithheldEmpty(t, root));
  } else {
    const double x = t.embeddings_per_second();
    const double scale =
        x > 0 && std::isfinite(x)
            ? std::pow(10.0, kThroughputSignificantDigits - 1 - std::floor(std::log10(x)))
            : 0;
    if (!(x > 0) || std::round(x * scale) / scale != x) {
      return Refuse(root, absl::StrCat("throughput is not rounded to ",
                                       kThroughputSignificantDigits, " significant digits"));
    }
  }
  if (!OnGrid(r.privacy().epsilon(), kRateStep) || r.privacy().epsilon() < 0) {
    return Refuse(root, "the privacy accounting's epsilon is off its grid");
  }
  checks.push_back(CheckPrivacyOfLayout(r, layout, dp, root));
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckAllowlisted(const pb::Message& message, const std::set<std::string>& allowlist,
                              const DifferentialPrivacyConfig* dp) {
  const std::string type(message.GetDescriptor()->full_name());
  if (!allowlist.count(type)) return Refuse(type, "the type is not allowlisted");
  if (type != kEvaluationReleaseType) {
    return Refuse(type, "the guard knows no aggregate-only shape for this type");
  }
  // The audit hands in messages parsed through a descriptor pool of its own: same type, other
  // class.
  const auto* typed = dynamic_cast<const fedface::v1::EvaluationRelease*>(&message);
  fedface::v1::EvaluationRelease copy;
  if (typed == nullptr) {
    if (!copy.ParseFromString(message.SerializeAsString())) {
      return Refuse(type, "the message does not parse as its own type");
    }
    typed = &copy;
  }
  Layout layout;
  layout.version = static_cast<int>(typed->bin_edges_version());
  if (layout.version == metrics::kBinLayoutV2) {
    layout.bins = metrics::kLayoutV2Bins;
    layout.negative_counts = true;
  } else if (layout.version != metrics::kScoreBinEdgesVersion) {
    return Refuse(type, absl::StrCat("bin layout version ", typed->bin_edges_version(),
                                     " is not known (1 or 2)"));
  }
  RETURN_IF_ERROR(CheckShape(message, type, 0, layout));
  return CheckOnGrid(*typed, layout, dp, type);
}

}  // namespace fedface::partner
