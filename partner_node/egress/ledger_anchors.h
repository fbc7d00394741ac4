// Ledger anchors: what the vendor keeps of a partner's ledger, so that entries removed from the
// END of the ledger (which the hash chain alone cannot show) are detected.
//
// Every EvaluationRelease carries the ledger head it extends (seq and entry_hash of the last
// entry before the release was recorded). The coordinator keeps, per partner, each release's
// head and the sha256 of the release bytes it received (`model_vendor rounds anchors PARTNER`
// prints them, one anchor per line: "HEAD_SEQ HEAD_HASH RELEASE_SHA256 [LABEL]").
//
// VerifyAnchors(entries, anchors) ENSURES ok == false, naming the first failing anchor, when:
//   - the ledger has no entry HEAD_SEQ (entries were removed from the end), or its entry_hash is
//     not HEAD_HASH (the ledger was rewritten from that entry on);
//   - no entry after HEAD_SEQ records a message whose sha256 is RELEASE_SHA256 (the release's own
//     entry was removed).
// It checks anchors only; the chain itself is EgressLedger::Verify's job (run both).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "partner_node/egress/egress_ledger.h"

namespace fedface::partner {

struct LedgerAnchor {
  int64_t head_seq = 0;
  std::string head_hash;       // kLedgerGenesisHash when head_seq is 0
  std::string release_sha256;  // lower-case hex of the release bytes the vendor received
  std::string label;           // e.g. the round id; may be empty
};

// One anchor per non-empty line, fields separated by spaces; '#' starts a comment line.
// InvalidArgument naming the line when a field is malformed.
absl::StatusOr<std::vector<LedgerAnchor>> ParseLedgerAnchors(const std::string& text);

// The line ParseLedgerAnchors reads back.
std::string FormatLedgerAnchor(const LedgerAnchor& anchor);

struct AnchorVerification {
  bool ok = true;
  int checked = 0;
  std::string reason;  // the first failing anchor, in one line
};

// `entries` as EgressLedger::Entries returns them (ordered by seq).
AnchorVerification VerifyAnchors(const std::vector<LedgerEntry>& entries,
                                 const std::vector<LedgerAnchor>& anchors);

}  // namespace fedface::partner
