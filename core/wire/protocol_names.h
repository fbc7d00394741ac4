// Names of the wire protocol's enums, one spelling for both sides: the partner's logs and
// ledger, the vendor's command line, rounds store and reports all say the same word.
#pragma once

#include <optional>
#include <string_view>

#include "fedface/v1/evaluation.pb.h"

namespace fedface {

// "verification", "identification" or "unspecified".
const char* ProtocolName(fedface::v1::EvaluationProtocol protocol);

// The inverse for "verification" / "identification"; nullopt for anything else.
std::optional<fedface::v1::EvaluationProtocol> ProtocolFromName(std::string_view name);

}  // namespace fedface
