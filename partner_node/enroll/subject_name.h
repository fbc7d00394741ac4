// What a subject may be called, for both ways in: a folder name under the gallery root
// (`partner_node enroll`) and the subject field of a local match API request. One rule, so a
// subject enrolled one way can be verified or deleted the other way.
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"

namespace fedface::partner {

inline constexpr size_t kMaxSubjectNameBytes = 128;

// OK when `name` is 1..kMaxSubjectNameBytes bytes of valid UTF-8 without control characters
// (U+0000..U+001F, U+007F), without '/' or '\\', not "." or "..", not starting with '.' (hidden
// folders are not subjects) and without leading or trailing spaces. Otherwise InvalidArgument
// saying what is wrong (the message does not repeat the name). Thread-safe.
absl::Status ValidateSubjectName(std::string_view name);

}  // namespace fedface::partner
