#include "partner_node/egress/release_shape.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/unknown_field_set.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/common/sha256.h"
#include "core/metrics/score_histogram.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_config.h"
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
        const bool ok = name == kRoundIdField          ? IsValidRoundId(v)
                        : name == kModelVersionField   ? IsValidModelVersion(v)
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

absl::Status CheckAllowlisted(const pb::Message& message, const std::set<std::string>& allowlist) {
  const std::string type(message.GetDescriptor()->full_name());
  if (!allowlist.count(type)) return Refuse(type, "the type is not allowlisted");
  if (type != kEvaluationReleaseType) {
    return Refuse(type, "the guard knows no aggregate-only shape for this type");
  }
  return CheckShape(message, type, 0);
}

}  // namespace fedface::partner
