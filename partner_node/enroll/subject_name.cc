#include "partner_node/enroll/subject_name.h"

#include "absl/strings/str_cat.h"

namespace fedface::partner {
namespace {

// Length of the UTF-8 sequence starting at s[i], or 0 when it is malformed (overlong forms,
// surrogates and code points above U+10FFFF included).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

absl::Status ValidateSubjectName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("subject name is empty");
  if (name.size() > kMaxSubjectNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject name is longer than ", kMaxSubjectNameBytes, " bytes"));
  }
  if (name.front() == '.') {
    return absl::InvalidArgumentError("subject name starts with '.'");
  }
  if (name.front() == ' ' || name.back() == ' ') {
    return absl::InvalidArgumentError("subject name starts or ends with a space");
  }
  for (size_t i = 0; i < name.size();) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError("subject name contains a control character");
    }
    if (c == '/' || c == '\\') {
      return absl::InvalidArgumentError("subject name contains a path separator");
    }
    const size_t n = Utf8SequenceLength(name, i);
    if (n == 0) return absl::InvalidArgumentError("subject name is not valid UTF-8");
    i += n;
  }
  return absl::OkStatus();
}

}  // namespace fedface::partner
