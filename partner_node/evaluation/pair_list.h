// Labelled pair lists for `partner_node evaluate --pairs FILE`. Two formats, told apart by the
// first non-blank line:
//   CSV   header `file_x,file_y,Decision`, then one pair per line; Decision is Yes (mated) or
//         No (non-mated), case-insensitive. Fields are trimmed; double-quoted fields are
//         allowed (with "" for a quote); CRLF line ends and a UTF-8 BOM are tolerated.
//   LFW   pairs.txt: first line `N` or `FOLDS N` (FOLDS sets of N mated then N non-mated
//         pairs); then `name i j` (mated: name/name_000i.jpg vs name/name_000j.jpg) or
//         `name1 i name2 j` (non-mated), whitespace separated.
// Blank lines are skipped. Paths are returned relative to the images folder; an absolute path or
// a ".." component is refused so that a pair list cannot reach outside that folder.
// Pure functions; thread-compatible.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace fedface::partner {

struct LabelledPair {
  std::string file_x;  // relative path
  std::string file_y;  // relative path
  bool mated = false;  // same subject
};

// Parses `text`; errors are one line: "SOURCE:LINE: reason".
absl::StatusOr<std::vector<LabelledPair>> ParsePairList(std::string_view text,
                                                        std::string_view source_name);

// Reads (at most 256 MiB) and parses the file at `path`.
absl::StatusOr<std::vector<LabelledPair>> ReadPairList(const std::string& path);

}  // namespace fedface::partner
