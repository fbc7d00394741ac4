#include "model_vendor/coordinator/report_json.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/wire/protocol_names.h"
#include "model_vendor/coordinator/release_check.h"

namespace fedface::vendor {
namespace {

using Json = nlohmann::ordered_json;

Json Optional(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }
Json TextOrNull(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

Json MetricJson(const MetricCell& c) {
  return Json{{"name", c.name},
              {"label", c.label},
              {"target", Optional(c.target)},
              {"released", c.released},
              {"value", Optional(c.value)},
              {"threshold", Optional(c.threshold)},
              {"achieved_rate", Optional(c.achieved_rate)},
              {"suppression", c.suppression},
              {"reason", c.released ? Json(nullptr) : Json(c.reason)},
              {"interval", c.interval ? Json{{"low", c.interval->low},
                                             {"high", c.interval->high},
                                             {"level", metrics::kIntervalLevel}}
                                      : Json(nullptr)},
              {"too_noisy", c.too_noisy}};
}

Json MetricsJson(const std::vector<MetricCell>& cells) {
  Json out = Json::array();
  for (const MetricCell& c : cells) out.push_back(MetricJson(c));
  return out;
}

Json DetJson(const std::vector<DetPoint>& det) {
  Json out = Json::array();
  for (const DetPoint& p : det) {
    out.push_back(Json{{"threshold", p.threshold}, {"fmr", p.fmr}, {"fnmr", p.fnmr}});
  }
  return out;
}

Json CountsArray(const metrics::ScoreHistogram& h) { return Json(h.counts()); }

Json BandJson(const fedface::v1::CountBand& b) {
  const bool released = b.suppression() == fedface::v1::SUPPRESSION_NONE;
  return Json{{"released", released},
              {"at_least", released ? Json(b.at_least()) : Json(nullptr)},
              {"below", released ? Json(b.below()) : Json(nullptr)},
              {"suppression", SuppressionCode(b.suppression())},
              {"reason", released ? Json(nullptr) : Json(SuppressionReason(b.suppression()))}};
}

Json ReleasedHistogramJson(const fedface::v1::ScoreHistogram& h) {
  const bool released = h.suppression() == fedface::v1::SUPPRESSION_NONE;
  Json counts = nullptr;
  if (released) counts = Json(std::vector<double>(h.counts().begin(), h.counts().end()));
  return Json{{"released", released},
              {"suppression", SuppressionCode(h.suppression())},
              {"reason", released ? Json(nullptr) : Json(SuppressionReason(h.suppression()))},
              {"counts", counts}};
}

Json ReleaseJson(const fedface::v1::EvaluationRelease& r) {
  const fedface::v1::Counts& c = r.counts();
  return Json{
      {"bin_edges_version", r.bin_edges_version()},
      {"counts", Json{{"subjects", BandJson(c.subjects())},
                      {"images", BandJson(c.images())},
                      {"mated_comparisons", BandJson(c.mated_comparisons())},
                      {"non_mated_comparisons", BandJson(c.non_mated_comparisons())}}},
      {"privacy", Json{{"differential_privacy", r.privacy().differential_privacy()},
                       {"epsilon", r.privacy().epsilon()},
                       {"contribution_bound", r.privacy().contribution_bound()},
                       {"genuine_contribution_bound", r.privacy().genuine_contribution_bound()},
                       {"impostor_contribution_bound", r.privacy().impostor_contribution_bound()},
                       {"genuine_noise_scale", r.privacy().genuine_noise_scale()},
                       {"impostor_noise_scale", r.privacy().impostor_noise_scale()}}},
      {"histograms", Json{{"genuine", ReleasedHistogramJson(r.genuine_histogram())},
                          {"impostor", ReleasedHistogramJson(r.impostor_histogram())}}},
  };
}

}  // namespace

std::string RoundReportJson(const RoundReport& report) {
  const RoundRecord& rec = report.record;
  Json round{{"round_id", rec.request.round_id},
             {"model_version", rec.request.model_version},
             {"protocol", ProtocolName(rec.request.protocol)},
             {"state", report.state},
             {"started_at", rec.started_at},
             {"finished_at", TextOrNull(rec.finished_at)},
             {"runs", rec.runs},
             {"quorum", rec.quorum},
             {"partners_asked", rec.outcomes.size()},
             {"partners_contributed", report.contributed},
             {"target_fmr", rec.target_fmr},
             {"seed", absl::StrCat(rec.request.seed)},
             {"non_mated_sample_size", rec.request.non_mated_sample_size}};

  const PooledRow& p = report.pooled;
  const RecommendedThresholdCell& rt = p.recommended;
  Json pooled{
      {"available", p.available},
      {"reason", p.available ? Json(nullptr) : Json(p.reason)},
      {"partners", p.partners},
      {"genuine_total", p.genuine_total},
      {"impostor_total", p.impostor_total},
      {"metrics", MetricsJson(p.metrics)},
      {"recommended_threshold", Json{{"target_fmr", rt.target_fmr},
                                     {"available", rt.available},
                                     {"threshold", Optional(rt.threshold)},
                                     {"predicted_fmr", Optional(rt.predicted_fmr)},
                                     {"predicted_fnmr", Optional(rt.predicted_fnmr)},
                                     {"reason", rt.available ? Json(nullptr) : Json(rt.reason)}}},
      {"bin_edges_version", p.layout_version > 0 ? Json(p.layout_version) : Json(nullptr)},
      {"histograms", p.histograms   ? Json{{"genuine", CountsArray(p.histograms->genuine)},
                                         {"impostor", CountsArray(p.histograms->impostor)}}
                     : p.layout_two ? Json{{"genuine", p.layout_two->genuine},
                                           {"impostor", p.layout_two->impostor}}
                                    : Json(nullptr)},
      {"det", DetJson(p.det)}};

  Json partners = Json::array();
  int64_t requests = 0, request_bytes = 0, messages = 0, bytes = 0;
  for (const PartnerRow& row : report.partners) {
    const PartnerOutcome& o = row.outcome;
    requests += o.egress.requests_sent;
    request_bytes += o.egress.request_bytes;
    messages += o.egress.messages_received;
    bytes += o.egress.bytes_received;
    partners.push_back(
        Json{{"name", o.partner.name},
             {"address", o.partner.address},
             {"certificate_name", o.partner.certificate_name},
             {"status", PartnerStatusName(o.status)},
             {"in_pool", o.status == PartnerStatus::kContributed &&
                             (row.histograms.has_value() || row.layout_two.has_value())},
             {"reason", TextOrNull(o.reason)},
             {"grpc_code", o.grpc_code},
             {"attempts", o.attempts},
             {"elapsed_ms", o.elapsed_ms},
             {"egress", Json{{"requests_sent", o.egress.requests_sent},
                             {"request_bytes", o.egress.request_bytes},
                             {"messages_received", o.egress.messages_received},
                             {"bytes_received", o.egress.bytes_received}}},
             {"metrics", MetricsJson(row.metrics)},
             {"release", o.release ? ReleaseJson(*o.release) : Json(nullptr)},
             {"det", DetJson(row.det)}});
  }

  Json doc{{"schema_version", kReportSchemaVersion},
           {"generated_by", absl::StrCat("model_vendor ", FEDFACE_VERSION)},
           {"round", round},
           {"score_bins", Json{{"edges_version", metrics::kScoreBinEdgesVersion},
                               {"bin_count", metrics::kScoreBinCount},
                               {"bin_width", metrics::kScoreBinWidth},
                               {"overflow_from", metrics::kScoreBinEdges.back()},
                               {"layout_2", Json{{"edges_version", metrics::kBinLayoutV2},
                                                 {"bin_count", metrics::kLayoutV2Bins},
                                                 {"inner_edges", metrics::kLayoutV2Edges}}}}},
           {"too_noisy_interval_width", metrics::kTooNoisyIntervalWidth},
           {"pooled", pooled},
           {"partners", partners},
           {"egress_summary", Json{{"requests_sent", requests},
                                   {"request_bytes", request_bytes},
                                   {"messages_received", messages},
                                   {"bytes_received", bytes}}}};
  // Replace, never throw: a reason may quote bytes a partner sent.
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace fedface::vendor
