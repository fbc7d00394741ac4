// report.html: the round's report for people who never saw the code. One self-contained file:
// inline CSS and SVG, no scripts, no fonts, images or anything else fetched from a network.
// It shows, in this order: the answer in plain words (recommended threshold and what it means),
// who took part and what happened to each partner, the results table (pooled row first, every
// withheld value with its reason), DET curves per partner and pooled (log-scale FMR axis), score
// histograms, the egress summary (what each partner sent, in messages and bytes), the privacy
// protections each partner applied, and a glossary. Every text taken from a config or a partner
// is HTML-escaped.
//
// Thread safety: pure function.
#pragma once

#include <string>

#include "model_vendor/coordinator/pooled_metrics.h"

namespace fedface::vendor {

std::string RoundReportHtml(const RoundReport& report);

}  // namespace fedface::vendor
