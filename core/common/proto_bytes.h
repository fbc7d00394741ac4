// The one way both sides turn a protobuf message into bytes that are hashed: the partner's
// ledger records sha256 of exactly these bytes, and the vendor recomputes them to anchor it.
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace fedface {

// Deterministic serialization (fields in number order, no map-order freedom): the same message
// gives the same bytes in every process.
std::string SerializeDeterministically(const google::protobuf::Message& message);

}  // namespace fedface
