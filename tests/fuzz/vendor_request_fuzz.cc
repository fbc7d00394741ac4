// libFuzzer target for the vendor-facing request checks (partner_node/egress/vendor_request.h):
// the bytes a vendor sends as a RunEvaluationRequest go through the same parse the service does
// (protobuf, unknown fields kept) and then CheckRequest, the protocol check and the request hash
// and summary. Whatever the bytes: a refusal or OK, no crash, and an accepted request always has
// a valid round id and model version (what the ledger and the release store rely on).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/wire/protocol_names.h"
#include "fedface/v1/evaluation.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "partner_node/egress/vendor_request.h"

// Invalid UTF-8 in a string field is a parse failure that protobuf also logs, once per input.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fedface::v1::RunEvaluationRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const absl::Status checked = fedface::partner::CheckRequest(request);
  if (!checked.ok()) return 0;
  if (!fedface::partner::IsValidRoundId(request.round_id()) ||
      !fedface::partner::IsValidModelVersion(request.model_version())) {
    __builtin_trap();
  }
  fedface::partner::DifferentialPrivacyConfig dp;
  dp.enabled = false;
  (void)fedface::partner::CheckProtocolAllowed(request, dp);
  dp.enabled = true;
  (void)fedface::partner::CheckProtocolAllowed(request, dp);
  (void)fedface::ProtocolName(request.protocol());
  if (fedface::partner::RequestHash(request).size() != 64) __builtin_trap();
  (void)fedface::partner::RoundSummary(request);
  return 0;
}
