// A digest of what a release was computed from: the exact (non-private) parts of an evaluation
// aggregate. Kept on the partner's machine only (the held-releases store), so that
// `partner_node releases show ID --local` can tell whether a fresh evaluation of the same request
// still describes the data behind the held release (the gallery or its embeddings changed
// otherwise). Never part of any release.
#pragma once

#include <string>

#include "partner_node/egress/release_composer.h"

namespace fedface::partner {

// sha256 (hex) over the protocol, the cohort counts and every count of the exact and of the
// contribution-bounded histograms, in a fixed order.
std::string EvaluationFingerprint(const EvaluationAggregate& aggregate);

}  // namespace fedface::partner
