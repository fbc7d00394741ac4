// Semantic-version precedence (semver.org, section 11) of model versions, so that "newest" means
// 1.10.0 after 1.9.0 and 2.0.0 after 2.0.0-rc.1.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fedface::partner {

// <0, 0 or >0 as a precedes, equals or follows b. Build metadata ("+...") does not count for
// precedence; ties are then broken by the whole string so that the order is total.
// REQUIRES: both are valid model versions (IsValidModelVersion).
int CompareModelVersions(std::string_view a, std::string_view b);

// Sorts ascending by CompareModelVersions.
void SortModelVersions(std::vector<std::string>* versions);

}  // namespace fedface::partner
