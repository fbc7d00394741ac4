#include "partner_node/egress/vendor_request.h"

#include <google/protobuf/reflection.h>
#include <google/protobuf/unknown_field_set.h>

#include "absl/strings/str_cat.h"
#include "core/common/proto_bytes.h"
#include "core/common/sha256.h"
#include "core/wire/protocol_names.h"

namespace fedface::partner {
namespace {

bool IsRoundIdChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}
bool IsVersionChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '+' || c == '-';
}
template <typename Pred>
bool Matches(std::string_view s, Pred ok) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!ok(c)) return false;
  }
  return true;
}

}  // namespace

bool IsValidRoundId(std::string_view round_id) { return Matches(round_id, IsRoundIdChar); }
bool IsValidModelVersion(std::string_view model_version) {
  return Matches(model_version, IsVersionChar);
}

absl::Status CheckRequest(const fedface::v1::RunEvaluationRequest& request) {
  if (!IsValidRoundId(request.round_id())) {
    return absl::InvalidArgumentError("round_id must match [A-Za-z0-9_-]{1,64}");
  }
  if (!IsValidModelVersion(request.model_version())) {
    return absl::InvalidArgumentError("model_version must match [0-9A-Za-z.+-]{1,64}");
  }
  if (request.protocol() != fedface::v1::EVALUATION_PROTOCOL_VERIFICATION &&
      request.protocol() != fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION) {
    return absl::InvalidArgumentError("protocol must be verification or identification");
  }
  if (!request.GetReflection()->GetUnknownFields(request).empty()) {
    return absl::InvalidArgumentError("the request carries unknown fields");
  }
  return absl::OkStatus();
}

absl::Status CheckProtocolAllowed(const fedface::v1::RunEvaluationRequest& request,
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

std::string RequestHash(const fedface::v1::RunEvaluationRequest& request) {
  return Sha256Hex(SerializeDeterministically(request));
}

std::string RoundSummary(const fedface::v1::RunEvaluationRequest& request) {
  return absl::StrCat(ProtocolName(request.protocol()), " model=", request.model_version(),
                      " seed=", request.seed(),
                      " non_mated_sample=", request.non_mated_sample_size());
}

}  // namespace fedface::partner
