#include "partner_node/serve/egress_fault_hook.h"

namespace fedface::partner {

EgressFaultHook egress_fault_hook_for_tests = nullptr;

std::string WithEgressFault(const std::string& bytes) {
  if (egress_fault_hook_for_tests == nullptr) return bytes;
  std::string rewritten = bytes;
  egress_fault_hook_for_tests(&rewritten);
  return rewritten;
}

}  // namespace fedface::partner
