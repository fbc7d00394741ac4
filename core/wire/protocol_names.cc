#include "core/wire/protocol_names.h"

namespace fedface {

const char* ProtocolName(fedface::v1::EvaluationProtocol protocol) {
  switch (protocol) {
    case fedface::v1::EVALUATION_PROTOCOL_VERIFICATION:
      return "verification";
    case fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION:
      return "identification";
    default:
      return "unspecified";
  }
}

std::optional<fedface::v1::EvaluationProtocol> ProtocolFromName(std::string_view name) {
  if (name == "verification") return fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
  if (name == "identification") return fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION;
  return std::nullopt;
}

}  // namespace fedface
