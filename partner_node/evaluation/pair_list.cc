#include "partner_node/evaluation/pair_list.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"

namespace fedface::partner {
namespace {

// Debian's abseil has its own string_view (not an alias of std::string_view), so the parser
// works on absl::string_view inside and converts only at the public boundary.
using absl::string_view;

constexpr uint64_t kMaxPairListBytes = uint64_t{256} << 20;

struct Line {
  std::size_t number;  // 1-based
  string_view text;
};

// Lines without their CR/LF ends, with the UTF-8 BOM removed from the first.
std::vector<Line> SplitLines(string_view text) {
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
  std::vector<Line> lines;
  std::size_t number = 0;
  for (string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(Line{number, line});
  }
  return lines;
}

absl::Status LineError(string_view source, std::size_t line, string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": ", reason));
}

// Refuses what could leave the images folder or is not a path at all.
absl::Status CheckRelativePath(string_view path, string_view source, std::size_t line) {
  if (path.empty()) return LineError(source, line, "empty file name");
  if (path.front() == '/') {
    return LineError(source, line, absl::StrCat("absolute path '", path, "' is not allowed"));
  }
  if (path.find('\0') != string_view::npos) {
    return LineError(source, line, "file name contains a NUL byte");
  }
  for (string_view part : absl::StrSplit(path, absl::ByAnyChar("/\\"))) {
    if (part == "..") {
      return LineError(source, line, absl::StrCat("path '", path, "' leaves the images folder"));
    }
  }
  return absl::OkStatus();
}

// Splits one CSV record into trimmed fields; fields may be double-quoted.
absl::StatusOr<std::vector<std::string>> SplitCsvRecord(string_view text, string_view source,
                                                        std::size_t line) {
  std::vector<std::string> fields;
  std::size_t i = 0;
  while (true) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    std::string field;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        field += text[i++];
      }
      if (!closed) return LineError(source, line, "unterminated quoted field");
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
      if (i < text.size() && text[i] != ',') {
        return LineError(source, line, "text after a closing quote");
      }
    } else {
      const std::size_t end = std::min(text.find(',', i), text.size());
      field = std::string(absl::StripAsciiWhitespace(text.substr(i, end - i)));
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= text.size()) break;
    ++i;  // the comma
  }
  return fields;
}

absl::StatusOr<std::vector<LabelledPair>> ParseCsv(const std::vector<Line>& lines,
                                                   std::size_t header_index, string_view source) {
  const Line& header = lines[header_index];
  ASSIGN_OR_RETURN(std::vector<std::string> names,
                   SplitCsvRecord(header.text, source, header.number));
  if (names.size() != 3 || names[0] != "file_x" || names[1] != "file_y" ||
      !absl::EqualsIgnoreCase(names[2], "Decision")) {
    return LineError(source, header.number, "expected the header file_x,file_y,Decision");
  }
  std::vector<LabelledPair> pairs;
  for (std::size_t k = header_index + 1; k < lines.size(); ++k) {
    const Line& l = lines[k];
    if (absl::StripAsciiWhitespace(l.text).empty()) continue;
    ASSIGN_OR_RETURN(std::vector<std::string> fields, SplitCsvRecord(l.text, source, l.number));
    if (fields.size() != 3) {
      return LineError(
          source, l.number,
          absl::StrCat("expected 3 fields (file_x,file_y,Decision), found ", fields.size()));
    }
    LabelledPair pair{fields[0], fields[1], false};
    const std::string& decision = fields[2];
    if (absl::EqualsIgnoreCase(decision, "yes")) {
      pair.mated = true;
    } else if (!absl::EqualsIgnoreCase(decision, "no")) {
      return LineError(source, l.number,
                       absl::StrCat("Decision must be Yes or No, found '", decision, "'"));
    }
    RETURN_IF_ERROR(CheckRelativePath(pair.file_x, source, l.number));
    RETURN_IF_ERROR(CheckRelativePath(pair.file_y, source, l.number));
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

absl::StatusOr<std::string> LfwFile(string_view name, string_view index, string_view source,
                                    std::size_t line) {
  int i = 0;
  if (!absl::SimpleAtoi(index, &i) || i < 1 || i > 9999) {
    return LineError(source, line,
                     absl::StrCat("image number '", index, "' is not an integer in 1..9999"));
  }
  if (name.find('/') != string_view::npos || name.find('\\') != string_view::npos || name == "." ||
      name == "..") {
    return LineError(source, line, absl::StrCat("subject name '", name, "' is not a plain name"));
  }
  char number[8];
  std::snprintf(number, sizeof(number), "%04d", i);
  return absl::StrCat(name, "/", name, "_", number, ".jpg");
}

absl::StatusOr<std::vector<LabelledPair>> ParseLfw(const std::vector<Line>& lines,
                                                   std::size_t header_index, string_view source) {
  const Line& header = lines[header_index];
  std::vector<string_view> head =
      absl::StrSplit(header.text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  std::size_t folds = 1, per_fold = 0;
  bool header_ok = head.size() == 1 || head.size() == 2;
  if (head.size() == 1) header_ok = header_ok && absl::SimpleAtoi(head[0], &per_fold);
  if (head.size() == 2) {
    header_ok = absl::SimpleAtoi(head[0], &folds) && absl::SimpleAtoi(head[1], &per_fold);
  }
  if (!header_ok || folds == 0 || per_fold == 0 || folds > 1000 || per_fold > 10000000) {
    return LineError(source, header.number,
                     "expected a CSV header file_x,file_y,Decision or an LFW header 'N' or "
                     "'FOLDS N'");
  }
  std::vector<LabelledPair> pairs;
  for (std::size_t k = header_index + 1; k < lines.size(); ++k) {
    const Line& l = lines[k];
    std::vector<string_view> f = absl::StrSplit(l.text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.empty()) continue;
    LabelledPair pair;
    if (f.size() == 3) {
      ASSIGN_OR_RETURN(std::string x, LfwFile(f[0], f[1], source, l.number));
      ASSIGN_OR_RETURN(std::string y, LfwFile(f[0], f[2], source, l.number));
      pair = LabelledPair{std::move(x), std::move(y), true};
    } else if (f.size() == 4) {
      ASSIGN_OR_RETURN(std::string x, LfwFile(f[0], f[1], source, l.number));
      ASSIGN_OR_RETURN(std::string y, LfwFile(f[2], f[3], source, l.number));
      pair = LabelledPair{std::move(x), std::move(y), false};
    } else {
      return LineError(
          source, l.number,
          absl::StrCat("expected 'name i j' or 'name1 i name2 j', found ", f.size(), " fields"));
    }
    pairs.push_back(std::move(pair));
  }
  const std::size_t expected = 2 * folds * per_fold;
  if (pairs.size() != expected) {
    return LineError(
        source, header.number,
        absl::StrCat("header announces ", expected, " pairs, the file has ", pairs.size()));
  }
  return pairs;
}

}  // namespace

absl::StatusOr<std::vector<LabelledPair>> ParsePairList(std::string_view std_text,
                                                        std::string_view std_source_name) {
  const string_view text(std_text.data(), std_text.size());
  const string_view source_name(std_source_name.data(), std_source_name.size());
  const std::vector<Line> lines = SplitLines(text);
  std::size_t first = 0;
  while (first < lines.size() && absl::StripAsciiWhitespace(lines[first].text).empty()) ++first;
  if (first == lines.size()) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": the pair list is empty"));
  }
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(lines[first].text), "file_x") ||
      lines[first].text.find(',') != string_view::npos) {
    return ParseCsv(lines, first, source_name);
  }
  return ParseLfw(lines, first, source_name);
}

absl::StatusOr<std::vector<LabelledPair>> ReadPairList(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxPairListBytes));
  return ParsePairList(text, path);
}

}  // namespace fedface::partner
