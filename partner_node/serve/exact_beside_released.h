// `partner_node releases show ID --local`: the released figures of a release beside the exact
// ones of the same evaluation (all comparisons, no noise, no contribution bound), for the
// partner's own eyes. Printed only; nothing here is stored or sent.
#pragma once

#include <ostream>

#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/release_composer.h"

namespace fedface::partner {

// One line per metric of the release's protocol: label, released value (or why withheld), exact
// value from `aggregate`'s exact histograms, and the difference.
void PrintExactBesideReleased(const fedface::v1::EvaluationRelease& release,
                              const EvaluationAggregate& aggregate, std::ostream& out);

}  // namespace fedface::partner
