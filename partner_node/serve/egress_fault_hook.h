// TEST-ONLY fault injection for the traffic audit's negative control (issue 6): a way to make a
// partner send what its egress guard did not build, so that a test can prove the audit fails.
//
// The hook is a function pointer that is nullptr in every product binary: nothing in
// partner_node/, model_vendor/ or core/ assigns it. Only the test executable partner_node_leaky
// (tests/audit/federation/, built from partner_node/main.cc plus a test translation unit whose
// static initializer sets it) ever has one. WithEgressFault is called at exactly one place, where
// the vendor-facing service hands the guard's bytes to gRPC (evaluation_service.cc); with no hook
// it returns the bytes unchanged.
//
// Thread safety: the pointer is written only before main() runs (static initialization) and read
// afterwards; the hook itself must be thread-safe.
#pragma once

#include <string>

namespace fedface::partner {

// Rewrites the vendor-bound bytes in place. Never set outside tests/audit/federation/.
using EgressFaultHook = void (*)(std::string* vendor_bound_bytes);
extern EgressFaultHook egress_fault_hook_for_tests;

// `bytes` unchanged when no hook is installed (always, in partner_node); else the hook's rewrite.
std::string WithEgressFault(const std::string& bytes);

}  // namespace fedface::partner
