#include "partner_node/egress/vendor_status.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fedface::partner {
namespace {

using Code = absl::StatusCode;

struct Entry {
  Code code;
  absl::string_view phrase;  // found in the local text
  absl::string_view text;    // what the vendor reads
  // The reason depends on the partner's data (how many images, subjects or comparisons; a
  // failure while embedding) rather than only on its configuration, state or the request.
  bool data_dependent = false;
};

// Specific entries first; the phrase picks the entry, the text is what leaves.
constexpr Entry kCatalogue[] = {
    {Code::kInvalidArgument, "round_id must match", "round_id must match [A-Za-z0-9_-]{1,64}"},
    {Code::kInvalidArgument, "model_version must match",
     "model_version must match [0-9A-Za-z.+-]{1,64}"},
    {Code::kInvalidArgument, "protocol must be", "protocol must be verification or identification"},
    {Code::kInvalidArgument, "unknown fields", "the request carries unknown fields"},
    {Code::kInvalidArgument, "not a RunEvaluationRequest",
     "the request is not a RunEvaluationRequest"},
    {Code::kInvalidArgument, "no request message", "the call carries no request message"},
    {Code::kUnauthenticated, "client certificate", "a client certificate is required"},
    {Code::kPermissionDenied, "is not allowed", "this vendor identity is not allowed"},
    {Code::kPermissionDenied, "declined", "the partner declined the release of this round"},
    {Code::kAlreadyExists, "already used",
     "this round_id was already used by this vendor for a different request"},
    {Code::kResourceExhausted, "privacy budget exhausted",
     "privacy budget exhausted for this vendor"},
    {Code::kResourceExhausted, kRateLimitPhrase, kRateLimitedText},
    {Code::kResourceExhausted, "re-embedding",
     "this round needs more re-embedding of the partner's gallery than the partner allows vendor "
     "rounds to trigger; the partner's log says more",
     true},
    {Code::kFailedPrecondition, "identification is not released while differential privacy",
     "identification is not released while differential privacy is on: its noise would not "
     "cover one subject's influence on other subjects' searches"},
    {Code::kFailedPrecondition, "held for approval",
     "held for approval: the partner reviews each release before it is sent; retry this round_id "
     "later"},
    {Code::kFailedPrecondition, "does not evaluate other model versions",
     "the requested model version is not the partner's active model and this partner does not "
     "evaluate other model versions"},
    {Code::kFailedPrecondition, "could not be pulled and verified",
     "the requested model version could not be pulled and verified on this partner (the "
     "partner's log says why)"},
    {Code::kFailedPrecondition, "not embedded with",
     "the partner's gallery is not embedded with the requested model version yet"},
    {Code::kFailedPrecondition, "could not be re-embedded",
     "the partner's gallery could not be re-embedded with the requested model version", true},
    {Code::kFailedPrecondition, "gallery files to embed",
     "the partner has no gallery files to embed for evaluation"},
    {Code::kFailedPrecondition, "than this partner runs per request",
     "the request needs more comparisons than this partner runs per request; ask for a smaller "
     "non_mated_sample_size",
     true},
    {Code::kUnavailable, "shutting down", "the partner is shutting down; retry later"},
    {Code::kUnavailable, "too many identical requests", "too many identical requests; retry later"},
    {Code::kUnavailable, "busy", "the partner is busy with other evaluations; retry later"},
    {Code::kDeadlineExceeded, "gave up", "every caller of this round gave up; nothing was charged"},
};

// When no entry fits: one text per code.
absl::string_view GenericText(Code code) {
  switch (code) {
    case Code::kInvalidArgument:
      return "the request was refused as malformed";
    case Code::kUnauthenticated:
      return "the caller is not authenticated";
    case Code::kPermissionDenied:
      return "the partner refused this vendor's request";
    case Code::kAlreadyExists:
      return "this request conflicts with an earlier one";
    case Code::kResourceExhausted:
      return "the partner refused the request: a limit was reached";
    case Code::kFailedPrecondition:
      return "the partner cannot run this request now";
    case Code::kUnavailable:
      return "the partner is unavailable; retry later";
    case Code::kDeadlineExceeded:
      return "the deadline passed";
    case Code::kCancelled:
      return "the request was cancelled";
    default:
      return "the request failed on the partner's side (the partner's log says why)";
  }
}

const Entry* EntryOf(const absl::Status& local) {
  for (const Entry& e : kCatalogue) {
    if (e.code == local.code() && local.message().find(e.phrase) != absl::string_view::npos) {
      return &e;
    }
  }
  return nullptr;
}

}  // namespace

absl::Status VendorStatus(const absl::Status& local) {
  if (local.ok()) return local;
  const Entry* e = EntryOf(local);
  return absl::Status(local.code(), e ? e->text : GenericText(local.code()));
}

bool DependsOnPartnerData(const absl::Status& local) {
  if (local.ok()) return false;
  if (const Entry* e = EntryOf(local)) return e->data_dependent;
  // No entry: an unforeseen failure. Only codes that say nothing of the data are free.
  switch (local.code()) {
    case Code::kInvalidArgument:
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
    case Code::kAlreadyExists:
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kCancelled:
      return false;
    default:
      return true;
  }
}

std::string RefusalBytes(const absl::Status& sent) {
  return absl::StrCat(static_cast<int>(sent.code()), " ", sent.message());
}

bool IsRateLimitRefusal(const absl::Status& sent) {
  return sent.code() == Code::kResourceExhausted && sent.message() == kRateLimitedText;
}

std::vector<std::string> CatalogueTexts() {
  std::vector<std::string> out;
  for (const Entry& e : kCatalogue) out.emplace_back(e.text);
  for (Code c : {Code::kInvalidArgument, Code::kUnauthenticated, Code::kPermissionDenied,
                 Code::kAlreadyExists, Code::kResourceExhausted, Code::kFailedPrecondition,
                 Code::kUnavailable, Code::kDeadlineExceeded, Code::kCancelled, Code::kInternal}) {
    out.emplace_back(GenericText(c));
  }
  return out;
}

}  // namespace fedface::partner
