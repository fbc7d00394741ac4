#include "partner_node/serve/exact_beside_released.h"

#include <cmath>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "core/metrics/identification_metrics.h"
#include "core/metrics/release_derivation.h"
#include "core/metrics/score_histogram.h"

namespace fedface::partner {
namespace {

using fedface::v1::SUPPRESSION_NONE;

std::optional<double> Released(fedface::v1::Suppression s, double value) {
  if (s == SUPPRESSION_NONE) return value;
  return std::nullopt;
}

std::optional<double> AtTarget(const EvaluationAggregate& a, double target) {
  const metrics::FnmrAtFmr f = metrics::ComputeFnmrAtFmr(a.genuine, a.impostor, target);
  if (f.point) return f.point->fnmr;
  return std::nullopt;
}

void Line(const std::string& label, std::optional<double> released, std::optional<double> exact,
          std::ostream& out) {
  auto text = [](std::optional<double> v) {
    return v ? absl::StrFormat("%.4f", *v) : std::string("withheld");
  };
  std::string diff = "-";
  if (released && exact) diff = absl::StrFormat("%+.4f", *released - *exact);
  out << absl::StrFormat("  %-16s %10s %10s %10s\n", label, text(released), text(exact), diff);
}

}  // namespace

void PrintExactBesideReleased(const fedface::v1::EvaluationRelease& r, const EvaluationAggregate& a,
                              std::ostream& out) {
  out << absl::StrFormat(
      "exact: every comparison here, %.0f mated and %.0f non-mated (bins of "
      "%.2f), no noise, no contribution bound\n",
      a.genuine.total(), a.impostor.total(), metrics::kScoreBinWidth);
  if (r.bin_edges_version() == static_cast<uint32_t>(metrics::kBinLayoutV2)) {
    out << absl::StrFormat(
        "released: differential privacy, epsilon %g, bin layout 2, at most %u mated and %u "
        "impostor comparisons per subject, noise scales %.3g and %.3g per bin\n",
        r.privacy().epsilon(), r.privacy().genuine_contribution_bound(),
        r.privacy().impostor_contribution_bound(), r.privacy().genuine_noise_scale(),
        r.privacy().impostor_noise_scale());
  } else if (r.privacy().differential_privacy()) {
    out << absl::StrFormat(
        "released: differential privacy, epsilon %g, contribution bound c = "
        "%u per subject per histogram\n",
        r.privacy().epsilon(), r.privacy().contribution_bound());
  } else {
    out << "released: no differential privacy\n";
  }
  out << absl::StrFormat("  %-16s %10s %10s %10s\n", "metric", "released", "exact",
                         "released-exact");
  if (r.protocol() == fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION) {
    Line("Rank-1 rate",
         Released(r.rank1_identification_rate().suppression(),
                  r.rank1_identification_rate().value()),
         metrics::Rank1RateFromHistogram(a.genuine), out);
    Line("FNIR @ FPIR 1e-2",
         Released(r.fnir_at_fpir_1e2().suppression(), r.fnir_at_fpir_1e2().fnir()),
         AtTarget(a, 1e-2), out);
    Line("FNIR @ FPIR 1e-1",
         Released(r.fnir_at_fpir_1e1().suppression(), r.fnir_at_fpir_1e1().fnir()),
         AtTarget(a, 1e-1), out);
    return;
  }
  const fedface::v1::FnmrAtFmr* fnmr[] = {&r.fnmr_at_fmr_1e2(), &r.fnmr_at_fmr_1e3(),
                                          &r.fnmr_at_fmr_1e4()};
  const char* labels[] = {"FNMR @ FMR 1e-2", "FNMR @ FMR 1e-3", "FNMR @ FMR 1e-4"};
  for (int k = 0; k < 3; ++k) {
    Line(labels[k], Released(fnmr[k]->suppression(), fnmr[k]->fnmr()),
         AtTarget(a, metrics::kStandardFmrTargets[static_cast<std::size_t>(k)]), out);
  }
  std::optional<double> eer;
  if (auto e = metrics::Eer(a.genuine, a.impostor)) eer = e->eer;
  Line("EER", Released(r.eer().suppression(), r.eer().eer()), eer, out);
  Line("ROC AUC", Released(r.roc_auc().suppression(), r.roc_auc().value()),
       metrics::RocAuc(a.genuine, a.impostor), out);
}

}  // namespace fedface::partner
