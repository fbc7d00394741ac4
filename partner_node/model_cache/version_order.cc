#include "partner_node/model_cache/version_order.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace fedface::partner {
namespace {

bool IsNumeric(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Compares two numeric identifiers without overflow: longer (no leading zeros) is larger.
int CompareNumbers(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a.front() == '0') a.remove_prefix(1);
  while (b.size() > 1 && b.front() == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

int CompareIdentifiers(std::string_view a, std::string_view b) {
  const bool na = IsNumeric(a), nb = IsNumeric(b);
  if (na && nb) return CompareNumbers(a, b);
  if (na != nb) return na ? -1 : 1;  // numeric identifiers have lower precedence
  const int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  for (absl::string_view part : absl::StrSplit(absl::string_view(s.data(), s.size()), '.')) {
    out.emplace_back(part.data(), part.size());
  }
  return out;
}

}  // namespace

int CompareModelVersions(std::string_view a, std::string_view b) {
  const std::string_view full_a = a, full_b = b;
  a = a.substr(0, a.find('+'));
  b = b.substr(0, b.find('+'));
  const size_t dash_a = a.find('-'), dash_b = b.find('-');
  const std::string_view core_a = a.substr(0, dash_a), core_b = b.substr(0, dash_b);
  const std::vector<std::string_view> pa = Split(core_a), pb = Split(core_b);
  for (size_t i = 0; i < std::min(pa.size(), pb.size()); ++i) {
    if (int c = CompareNumbers(pa[i], pb[i]); c != 0) return c;
  }
  if (pa.size() != pb.size()) return pa.size() < pb.size() ? -1 : 1;
  const bool pre_a = dash_a != std::string_view::npos, pre_b = dash_b != std::string_view::npos;
  if (pre_a != pre_b) return pre_a ? -1 : 1;  // a pre-release precedes its release
  if (pre_a) {
    const std::vector<std::string_view> ia = Split(a.substr(dash_a + 1));
    const std::vector<std::string_view> ib = Split(b.substr(dash_b + 1));
    for (size_t i = 0; i < std::min(ia.size(), ib.size()); ++i) {
      if (int c = CompareIdentifiers(ia[i], ib[i]); c != 0) return c;
    }
    if (ia.size() != ib.size()) return ia.size() < ib.size() ? -1 : 1;
  }
  const int c = full_a.compare(full_b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

void SortModelVersions(std::vector<std::string>* versions) {
  std::sort(versions->begin(), versions->end(), [](const std::string& a, const std::string& b) {
    return CompareModelVersions(a, b) < 0;
  });
}

}  // namespace fedface::partner
