#include "partner_node/egress/egress_guard.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/unknown_field_set.h>

#include <cmath>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/proto_bytes.h"
#include "core/common/sha256.h"
#include "core/metrics/identification_metrics.h"
#include "core/metrics/verification_metrics.h"

namespace fedface::partner {
namespace {

namespace pb = ::google::protobuf;
using fedface::v1::EvaluationProtocol;
using fedface::v1::EvaluationRelease;
using fedface::v1::RunEvaluationRequest;
using fedface::v1::Suppression;

// The only string fields that may leave, and the characters each may hold.
constexpr char kRoundIdField[] = "fedface.v1.EvaluationRelease.round_id";
constexpr char kModelVersionField[] = "fedface.v1.EvaluationRelease.model_version";
constexpr char kLedgerHeadHashField[] = "fedface.v1.LedgerHead.entry_hash";
// The only repeated field that may leave.
constexpr char kHistogramCountsField[] = "fedface.v1.ScoreHistogram.counts";

bool IsRoundIdChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}
bool IsVersionChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '+' || c == '-';
}
template <typename Pred>
bool Matches(const std::string& s, Pred ok) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!ok(c)) return false;
  }
  return true;
}

const char* ProtocolName(EvaluationProtocol p) {
  switch (p) {
    case fedface::v1::EVALUATION_PROTOCOL_VERIFICATION:
      return "verification";
    case fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION:
      return "identification";
    default:
      return "unspecified";
  }
}

// Statuses that may be sent to the vendor as they are; anything else is a local failure whose
// detail (file names, SQLite messages) stays in the partner's log.
absl::Status ForVendor(const absl::Status& s, const char* step) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
      return s;
    default:
      std::cerr << "egress guard: " << step << ": " << s << "\n";
      return absl::InternalError(
          absl::StrCat("egress guard: ", step, " failed on the partner's side"));
  }
}

Suppression ReasonOf(metrics::Availability a) {
  switch (a) {
    case metrics::Availability::kAvailable:
      return fedface::v1::SUPPRESSION_NONE;
    case metrics::Availability::kInsufficientNonMated:
      return fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED;
    case metrics::Availability::kNoMated:
      return fedface::v1::SUPPRESSION_NO_MATED;
  }
  return fedface::v1::SUPPRESSION_NOT_MEASURED;
}

double RoundSignificant(double x, int digits) {
  if (!(x > 0) || !std::isfinite(x)) return 0;
  const double scale = std::pow(10.0, digits - 1 - std::floor(std::log10(x)));
  return std::round(x * scale) / scale;
}

void SetBand(fedface::v1::CountBand* band, int64_t count, bool allowed) {
  if (!allowed) {
    band->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    return;
  }
  const Band b = CountBandOf(count);
  band->set_suppression(fedface::v1::SUPPRESSION_NONE);
  band->set_at_least(b.at_least);
  band->set_below(b.below);
}

void SetHistogram(fedface::v1::ScoreHistogram* out, const metrics::ScoreHistogram& h,
                  bool allowed) {
  if (!allowed) {
    out->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    return;
  }
  out->set_suppression(fedface::v1::SUPPRESSION_NONE);
  for (double c : h.counts()) out->add_counts(c);
}

// One error rate at a target false-accept rate, from histograms: FNMR at FMR for verification,
// and the same arithmetic as FNIR at FPIR over the identification histograms
// (identification_metrics.h). `write(threshold, miss_rate, false_accept_rate)` fills the fields.
template <typename RateAtTarget, typename Write>
void SetRateAtTarget(RateAtTarget* out, const metrics::ScoreHistogram& g,
                     const metrics::ScoreHistogram& i, double target, bool allowed, Write write) {
  if (!allowed) {
    out->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    return;
  }
  const metrics::FnmrAtFmr f = metrics::ComputeFnmrAtFmr(g, i, target);
  out->set_suppression(ReasonOf(f.availability));
  if (f.point) write(f.point->threshold, f.point->fnmr, f.point->fmr);
}

void SetFnmrAtFmr(fedface::v1::FnmrAtFmr* out, double target, const metrics::ScoreHistogram& g,
                  const metrics::ScoreHistogram& i, bool allowed) {
  out->set_fmr_target(target);
  SetRateAtTarget(out, g, i, target, allowed, [out](double threshold, double fnmr, double fmr) {
    out->set_threshold(threshold);
    out->set_fnmr(fnmr);
    out->set_fmr(fmr);
  });
}

void SetFnirAtFpir(fedface::v1::FnirAtFpir* out, double target, const metrics::ScoreHistogram& g,
                   const metrics::ScoreHistogram& i, bool allowed) {
  out->set_fpir_target(target);
  SetRateAtTarget(out, g, i, target, allowed, [out](double threshold, double fnir, double fpir) {
    out->set_threshold(threshold);
    out->set_fnir(fnir);
    out->set_fpir(fpir);
  });
}

Suppression MissingSideReason(const metrics::ScoreHistogram& g) {
  return g.total() > 0 ? fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED
                       : fedface::v1::SUPPRESSION_NO_MATED;
}

// ---- Shape check (step 5) ----

absl::Status Refuse(const std::string& type, const std::string& why) {
  return absl::PermissionDeniedError(
      absl::StrCat("egress guard: refusing to send ", type, ": ", why));
}

absl::Status CheckShape(const pb::Message& m, const std::string& root_type, int depth) {
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
      const int expected = state == fedface::v1::SUPPRESSION_NONE ? metrics::kScoreBinCount : 0;
      if (n != expected) {
        return Refuse(root_type, absl::StrCat(name, " has ", n, " values, expected ", expected));
      }
      for (int j = 0; j < n; ++j) {
        const double v = r->GetRepeatedDouble(m, f, j);
        if (!std::isfinite(v) || v < 0) {
          return Refuse(root_type, absl::StrCat(name, " holds a negative or non-finite count"));
        }
      }
      continue;
    }
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        const std::string v = r->GetString(m, f);
        const bool ok = name == kRoundIdField          ? Matches(v, IsRoundIdChar)
                        : name == kModelVersionField   ? Matches(v, IsVersionChar)
                        : name == kLedgerHeadHashField ? IsSha256Hex(v)
                                                       : false;
        if (!ok) return Refuse(root_type, absl::StrCat("string field ", name));
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
        if (!r->HasField(m, f)) return Refuse(root_type, absl::StrCat(name, " is missing"));
        if (absl::Status s = CheckShape(r->GetMessage(m, f), root_type, depth + 1); !s.ok()) {
          return s;
        }
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

}  // namespace

absl::Status CheckRequest(const RunEvaluationRequest& request) {
  if (!Matches(request.round_id(), IsRoundIdChar)) {
    return absl::InvalidArgumentError("round_id must match [A-Za-z0-9_-]{1,64}");
  }
  if (!Matches(request.model_version(), IsVersionChar)) {
    return absl::InvalidArgumentError("model_version must match [0-9A-Za-z.+-]{1,64}");
  }
  if (request.protocol() != fedface::v1::EVALUATION_PROTOCOL_VERIFICATION &&
      request.protocol() != fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION) {
    return absl::InvalidArgumentError("protocol must be verification or identification");
  }
  const pb::Reflection* r = request.GetReflection();
  if (!r->GetUnknownFields(request).empty()) {
    return absl::InvalidArgumentError("the request carries unknown fields");
  }
  return absl::OkStatus();
}

absl::Status CheckProtocolAllowed(const RunEvaluationRequest& request,
                                  const DifferentialPrivacyConfig& dp) {
  if (dp.enabled && request.protocol() == fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION) {
    return absl::FailedPreconditionError(kIdentificationUnderDpRefused);
  }
  return absl::OkStatus();
}

absl::Status CheckVendorIdentity(std::string_view vendor) {
  if (vendor.empty() || vendor.size() > 256) {
    return absl::InvalidArgumentError("vendor identity must be 1..256 characters");
  }
  for (char c : vendor) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError("vendor identity must be printable ASCII");
    }
  }
  return absl::OkStatus();
}

std::string RequestHash(const RunEvaluationRequest& request) {
  return Sha256Hex(SerializeDeterministically(request));
}

KMinimumDecision ApplyKMinimum(const CohortCounts& cohort, int k) {
  KMinimumDecision d;
  d.cohort = cohort.subjects >= k;
  d.mated = d.cohort && cohort.mated_subjects >= k;
  d.non_mated = d.cohort && cohort.non_mated_subjects >= k;
  return d;
}

Band CountBandOf(int64_t count) {
  if (count < 10) return Band{0, 10};
  // Ladder 10, 20, 50, 100, 200, 500, ...; the last band is open-ended (below = 0).
  uint64_t lower = 10;
  static constexpr uint64_t kSteps[] = {2, 5, 10};  // multipliers of the decade start
  uint64_t decade = 10;
  const auto n = static_cast<uint64_t>(count);
  while (true) {
    for (uint64_t step : kSteps) {
      const uint64_t upper = decade * step;
      if (n < upper) return Band{lower, upper};
      lower = upper;
    }
    if (decade > UINT64_MAX / 100) return Band{lower, 0};
    decade *= 10;
  }
}

EvaluationRelease BuildRelease(const RunEvaluationRequest& request,
                               const EvaluationAggregate& aggregate,
                               const KMinimumDecision& k_minimum, const NoisyHistograms* noisy,
                               const EgressGuardConfig& config,
                               const fedface::v1::LedgerHead& ledger_head) {
  EvaluationRelease r;
  *r.mutable_ledger_head() = ledger_head;
  r.set_round_id(request.round_id());
  r.set_model_version(request.model_version());
  r.set_protocol(request.protocol());
  r.set_bin_edges_version(metrics::kScoreBinEdgesVersion);

  const CohortCounts& c = aggregate.cohort;
  fedface::v1::Counts* counts = r.mutable_counts();
  SetBand(counts->mutable_subjects(), c.subjects, k_minimum.cohort);
  SetBand(counts->mutable_images(), c.images, k_minimum.cohort);
  SetBand(counts->mutable_mated_comparisons(), c.mated_comparisons, k_minimum.mated);
  SetBand(counts->mutable_non_mated_comparisons(), c.non_mated_comparisons, k_minimum.non_mated);

  fedface::v1::Rate* fte = r.mutable_failure_to_enrol_rate();
  if (!k_minimum.cohort) {
    fte->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  } else if (c.images <= 0) {
    fte->set_suppression(fedface::v1::SUPPRESSION_NOT_MEASURED);
  } else {
    fte->set_suppression(fedface::v1::SUPPRESSION_NONE);
    const double rate = static_cast<double>(c.failures_to_enrol) / static_cast<double>(c.images);
    fte->set_value(std::round(rate * 100.0) / 100.0);  // coarsened: not covered by the noise
  }

  const metrics::ScoreHistogram& g = noisy ? noisy->genuine : aggregate.genuine;
  const metrics::ScoreHistogram& i = noisy ? noisy->impostor : aggregate.impostor;
  const bool both = k_minimum.mated && k_minimum.non_mated;
  const bool verification = request.protocol() == fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;

  auto not_in_protocol = [](auto* m) {
    m->set_suppression(fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL);
  };
  if (verification) {
    SetFnmrAtFmr(r.mutable_fnmr_at_fmr_1e2(), 1e-2, g, i, both);
    SetFnmrAtFmr(r.mutable_fnmr_at_fmr_1e3(), 1e-3, g, i, both);
    SetFnmrAtFmr(r.mutable_fnmr_at_fmr_1e4(), 1e-4, g, i, both);
    fedface::v1::EqualErrorRate* eer = r.mutable_eer();
    fedface::v1::Rate* auc = r.mutable_roc_auc();
    if (!both) {
      eer->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
      auc->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    } else {
      const auto e = metrics::Eer(g, i);
      const auto a = metrics::RocAuc(g, i);
      eer->set_suppression(e ? fedface::v1::SUPPRESSION_NONE : MissingSideReason(g));
      if (e) {
        eer->set_eer(e->eer);
        eer->set_threshold(e->threshold);
      }
      auc->set_suppression(a ? fedface::v1::SUPPRESSION_NONE : MissingSideReason(g));
      if (a) auc->set_value(*a);
    }
    not_in_protocol(r.mutable_rank1_identification_rate());
    not_in_protocol(r.mutable_fnir_at_fpir_1e2());
    r.mutable_fnir_at_fpir_1e2()->set_fpir_target(1e-2);
    not_in_protocol(r.mutable_fnir_at_fpir_1e1());
    r.mutable_fnir_at_fpir_1e1()->set_fpir_target(1e-1);
  } else {
    for (auto [m, t] : {std::pair{r.mutable_fnmr_at_fmr_1e2(), 1e-2},
                        std::pair{r.mutable_fnmr_at_fmr_1e3(), 1e-3},
                        std::pair{r.mutable_fnmr_at_fmr_1e4(), 1e-4}}) {
      not_in_protocol(m);
      m->set_fmr_target(t);
    }
    not_in_protocol(r.mutable_eer());
    not_in_protocol(r.mutable_roc_auc());
    fedface::v1::Rate* rank1 = r.mutable_rank1_identification_rate();
    if (!k_minimum.mated) {
      rank1->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    } else if (const auto rate = metrics::Rank1RateFromHistogram(g)) {
      rank1->set_suppression(fedface::v1::SUPPRESSION_NONE);
      rank1->set_value(*rate);
    } else {
      rank1->set_suppression(fedface::v1::SUPPRESSION_NO_MATED);
    }
    SetFnirAtFpir(r.mutable_fnir_at_fpir_1e2(), 1e-2, g, i, both);
    SetFnirAtFpir(r.mutable_fnir_at_fpir_1e1(), 1e-1, g, i, both);
  }

  SetHistogram(r.mutable_genuine_histogram(), g, k_minimum.mated);
  SetHistogram(r.mutable_impostor_histogram(), i, k_minimum.non_mated);

  fedface::v1::Throughput* throughput = r.mutable_throughput();
  if (!k_minimum.cohort) {
    throughput->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  } else if (!aggregate.embeddings_per_second || !(*aggregate.embeddings_per_second > 0)) {
    throughput->set_suppression(fedface::v1::SUPPRESSION_NOT_MEASURED);
  } else {
    throughput->set_suppression(fedface::v1::SUPPRESSION_NONE);
    throughput->set_embeddings_per_second(RoundSignificant(*aggregate.embeddings_per_second, 3));
  }

  fedface::v1::PrivacyAccounting* privacy = r.mutable_privacy();
  privacy->set_differential_privacy(noisy != nullptr);
  privacy->set_epsilon(noisy ? noisy->epsilon : 0.0);
  privacy->set_contribution_bound(noisy ? static_cast<uint32_t>(config.dp.contribution_bound) : 0u);
  return r;
}

absl::Status CheckAllowlisted(const pb::Message& message, const std::set<std::string>& allowlist) {
  const std::string type(message.GetDescriptor()->full_name());
  if (!allowlist.count(type)) return Refuse(type, "the type is not allowlisted");
  if (type != kEvaluationReleaseType) {
    return Refuse(type, "the guard knows no aggregate-only shape for this type");
  }
  return CheckShape(message, type, 0);
}

absl::StatusOr<std::unique_ptr<EgressGuard>> EgressGuard::Create(
    EgressGuardConfig config, PrivacyBudget* budget, EgressLedger* ledger,
    std::unique_ptr<NoiseSource> noise) {
  if (budget == nullptr || ledger == nullptr || noise == nullptr) {
    return absl::InvalidArgumentError("egress guard: budget, ledger and noise are required");
  }
  if (config.k_minimum < kMinimumK) {
    return absl::InvalidArgumentError(
        absl::StrCat("egress guard: k must be >= ", kMinimumK, " (egress.k_minimum)"));
  }
  if (config.dp.enabled &&
      (!(config.dp.epsilon_per_release > 0) || !std::isfinite(config.dp.epsilon_per_release) ||
       config.dp.contribution_bound < 1)) {
    return absl::InvalidArgumentError(
        "egress guard: differential privacy needs epsilon > 0 and a contribution bound >= 1");
  }
  return std::unique_ptr<EgressGuard>(
      new EgressGuard(std::move(config), budget, ledger, std::move(noise)));
}

absl::StatusOr<std::string> EgressGuard::Record(std::string_view vendor, std::string_view summary,
                                                std::string_view type, std::string bytes) {
  absl::StatusOr<LedgerEntry> entry = ledger_->Append(vendor, summary, type, bytes);
  if (!entry.ok()) return ForVendor(entry.status(), "recording in the egress ledger");
  return bytes;
}

absl::StatusOr<std::string> EgressGuard::Seal(std::string_view vendor, std::string_view summary,
                                              const pb::Message& message) {
  if (absl::Status s = CheckVendorIdentity(vendor); !s.ok()) return s;
  if (absl::Status s = CheckAllowlisted(message, config_.allowlist); !s.ok()) return s;
  return Record(vendor, summary, message.GetDescriptor()->full_name(),
                SerializeDeterministically(message));
}

absl::StatusOr<std::optional<std::string>> EgressGuard::Replay(
    std::string_view vendor, const RunEvaluationRequest& request) {
  if (absl::Status s = CheckVendorIdentity(vendor); !s.ok()) return s;
  if (absl::Status s = CheckRequest(request); !s.ok()) return s;
  absl::StatusOr<std::optional<StoredRelease>> stored = budget_->Find(vendor, request.round_id());
  if (!stored.ok()) return ForVendor(stored.status(), "reading the release store");
  if (!stored->has_value()) return std::optional<std::string>();
  if ((*stored)->request_sha256 != RequestHash(request)) {
    return absl::AlreadyExistsError(
        absl::StrCat("round_id '", request.round_id(),
                     "' was already used by this vendor for a different request"));
  }
  // The stored bytes passed every check when first released; they are sent again, so they are
  // recorded again.
  absl::StatusOr<std::string> bytes =
      Record(vendor,
             absl::StrCat("RunEvaluation replay round=", request.round_id(), " protocol=",
                          ProtocolName(request.protocol()), " model=", request.model_version()),
             kEvaluationReleaseType, std::move((*stored)->release_bytes));
  if (!bytes.ok()) return bytes.status();
  return std::optional<std::string>(*std::move(bytes));
}

absl::StatusOr<std::string> EgressGuard::ReleaseEvaluation(std::string_view vendor,
                                                           const RunEvaluationRequest& request,
                                                           const EvaluationAggregate& aggregate) {
  // Step 1, and the replay of a repeated request.
  absl::StatusOr<std::optional<std::string>> replay = Replay(vendor, request);
  if (!replay.ok()) return replay.status();
  if (replay->has_value()) return **replay;
  if (aggregate.protocol != request.protocol()) {
    return absl::FailedPreconditionError(
        "egress guard: the evaluation ran another protocol than the request asks for");
  }

  if (absl::Status s = CheckProtocolAllowed(request, config_.dp); !s.ok()) return s;

  // Step 2.
  const KMinimumDecision k_minimum = ApplyKMinimum(aggregate.cohort, config_.k_minimum);

  // Step 3.
  std::optional<NoisyHistograms> noisy;
  if (config_.dp.enabled) {
    if (!aggregate.bounded ||
        aggregate.bounded->contribution_bound() != config_.dp.contribution_bound) {
      return absl::FailedPreconditionError(
          "egress guard: differential privacy is on but the evaluation did not bound each "
          "subject's contributions with the configured bound");
    }
    std::lock_guard<std::mutex> lock(noise_mu_);
    noisy = AddLaplaceNoise(*aggregate.bounded, config_.dp.epsilon_per_release, *noise_);
  }

  // Step 4, with the ledger head the release extends (the vendor's anchor against removal of
  // the ledger's last entries; vendor-side data, nothing derived from a face).
  absl::StatusOr<LedgerHeadPosition> head = ledger_->Head();
  if (!head.ok()) return ForVendor(head.status(), "reading the egress ledger");
  fedface::v1::LedgerHead ledger_head;
  ledger_head.set_seq(static_cast<uint64_t>(head->seq));
  ledger_head.set_entry_hash(head->entry_hash);
  const EvaluationRelease release =
      BuildRelease(request, aggregate, k_minimum, noisy ? &*noisy : nullptr, config_, ledger_head);

  // Step 5.
  if (absl::Status s = CheckAllowlisted(release, config_.allowlist); !s.ok()) {
    return ForVendor(absl::InternalError(s.message()), "checking the release");
  }
  std::string bytes = SerializeDeterministically(release);

  // Step 6: charge and store before anything leaves; a concurrent identical request may have
  // won the race, in which case its bytes are the ones to send.
  StoredRelease candidate;
  candidate.vendor = std::string(vendor);
  candidate.round_id = request.round_id();
  candidate.request_sha256 = RequestHash(request);
  candidate.epsilon = noisy ? noisy->epsilon : 0.0;
  candidate.release_bytes = std::move(bytes);
  absl::StatusOr<StoredRelease> stored = budget_->ChargeAndStore(candidate);
  if (!stored.ok()) return ForVendor(stored.status(), "charging the privacy budget");

  // Step 7.
  return Record(vendor,
                absl::StrCat("RunEvaluation round=", request.round_id(), " protocol=",
                             ProtocolName(request.protocol()), " model=", request.model_version()),
                kEvaluationReleaseType, std::move(stored->release_bytes));
}

}  // namespace fedface::partner
