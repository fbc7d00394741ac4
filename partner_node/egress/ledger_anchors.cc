#include "partner_node/egress/ledger_anchors.h"

#include <algorithm>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/common/sha256.h"

namespace fedface::partner {
namespace {

std::string Named(const LedgerAnchor& a) {
  return a.label.empty() ? absl::StrCat("anchor at seq ", a.head_seq)
                         : absl::StrCat("anchor ", a.label, " (seq ", a.head_seq, ")");
}

}  // namespace

absl::StatusOr<std::vector<LedgerAnchor>> ParseLedgerAnchors(const std::string& text) {
  std::vector<LedgerAnchor> out;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    LedgerAnchor a;
    if (f.size() < 3 || f.size() > 4 || !absl::SimpleAtoi(f[0], &a.head_seq) || a.head_seq < 0 ||
        !IsSha256Hex(f[1]) || !IsSha256Hex(f[2])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "anchors line ", line_number, ": expected 'HEAD_SEQ HEAD_HASH RELEASE_SHA256 [LABEL]'"));
    }
    a.head_hash = f[1];
    a.release_sha256 = f[2];
    if (f.size() == 4) a.label = f[3];
    out.push_back(std::move(a));
  }
  return out;
}

std::string FormatLedgerAnchor(const LedgerAnchor& a) {
  return absl::StrCat(a.head_seq, " ", a.head_hash, " ", a.release_sha256,
                      a.label.empty() ? "" : " ", a.label);
}

AnchorVerification VerifyAnchors(const std::vector<LedgerEntry>& entries,
                                 const std::vector<LedgerAnchor>& anchors) {
  std::map<int64_t, const LedgerEntry*> by_seq;
  std::map<std::string, int64_t> last_seq_of_message;
  for (const LedgerEntry& e : entries) {
    by_seq[e.seq] = &e;
    last_seq_of_message[e.message_sha256] = e.seq;
  }
  const int64_t last = entries.empty() ? 0 : entries.back().seq;
  AnchorVerification v;
  // The latest anchor first: a cut end then shows as what it is, not as an older anchor's
  // missing release.
  std::vector<const LedgerAnchor*> order;
  for (const LedgerAnchor& a : anchors) order.push_back(&a);
  std::stable_sort(order.begin(), order.end(), [](const LedgerAnchor* x, const LedgerAnchor* y) {
    return x->head_seq > y->head_seq;
  });
  for (const LedgerAnchor* anchor : order) {
    const LedgerAnchor& a = *anchor;
    if (a.head_seq == 0) {
      if (a.head_hash != kLedgerGenesisHash) {
        v.ok = false;
        v.reason = absl::StrCat(Named(a), ": seq 0 with a hash other than the genesis hash");
        return v;
      }
    } else if (!by_seq.count(a.head_seq)) {
      v.ok = false;
      v.reason = a.head_seq > last
                     ? absl::StrCat(Named(a), ": the ledger ends at seq ", last,
                                    " but the vendor holds a release that extended entry ",
                                    a.head_seq, ": entries were removed from the end of the ledger")
                     : absl::StrCat(Named(a), ": entry ", a.head_seq, " is missing");
      return v;
    } else if (by_seq[a.head_seq]->entry_hash != a.head_hash) {
      v.ok = false;
      v.reason = absl::StrCat(Named(a), ": entry ", a.head_seq,
                              " differs from the one the release extended: the ledger was "
                              "rewritten from that entry on");
      return v;
    }
    const auto it = last_seq_of_message.find(a.release_sha256);
    if (it == last_seq_of_message.end() || it->second <= a.head_seq) {
      v.ok = false;
      v.reason = absl::StrCat(Named(a), ": no entry after seq ", a.head_seq,
                              " records the release the vendor received (sha256 ",
                              a.release_sha256.substr(0, 16), "...): its entry was removed");
      return v;
    }
    ++v.checked;
  }
  return v;
}

}  // namespace fedface::partner
