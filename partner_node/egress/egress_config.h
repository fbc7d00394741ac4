// What a partner configures for its egress toward vendors (the egress.* keys, serve_config.cc).
#pragma once

#include <set>
#include <string>

namespace fedface::partner {

inline constexpr char kEvaluationReleaseType[] = "fedface.v1.EvaluationRelease";

// The bounds and the split are the PARTNER's configuration: nothing in a vendor's request
// chooses them (a vendor that could would pick the ones that teach it most).
struct DifferentialPrivacyConfig {
  bool enabled = true;
  double epsilon_per_release = 1.0;  // charged per (non-repeated) release
  int contribution_bound = 10;       // c: identification searches per subject
  // Verification (release layout 2): c_g mated and c_i (even) impostor comparisons per subject,
  // and the impostor histogram's share of the histogram epsilon.
  int genuine_contribution_bound = 10;
  int impostor_contribution_bound = 64;
  double impostor_epsilon_share = 0.8;
};
inline constexpr double kMinImpostorEpsilonShare = 0.05;
inline constexpr double kMaxImpostorEpsilonShare = 0.95;

// The floor of k toward any vendor: a configuration cannot go below it.
inline constexpr int kMinimumK = 5;

struct EgressGuardConfig {
  int k_minimum = 10;  // >= kMinimumK
  DifferentialPrivacyConfig dp;
  // A person approves each release before it is sent (`partner_node releases approve N`).
  bool require_approval = false;
  // Message types that may leave, by full protobuf name. Default deny: nothing else.
  std::set<std::string> allowlist = {kEvaluationReleaseType};
};

}  // namespace fedface::partner
