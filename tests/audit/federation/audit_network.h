// Where the audit test's processes live. Two modes:
//   - namespaces (root, `ip` available): a vendor namespace fedface-audit-v-PID and one
//     namespace per partner, fedface-audit-pN-PID, joined by a veth pair each: 10.231.N.1/30 on
//     the vendor's end, 10.231.N.2/30 on the partner's (addresses exist ONLY inside these
//     namespaces; the host's network is untouched). IPv6 is off in all of them, so every packet
//     a partner sends is IPv4 on its veth, where the test captures it;
//   - loopback: everything on 127.0.0.1 in the test's own namespace.
// Namespaces are deleted by the destructor, and stale ones of dead test processes (same naming
// pattern, PID no longer running) when a new network is made.
//
// Thread safety: construct and destroy on one thread; the accessors are const.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedface::audit_test {

class AuditNetwork {
 public:
  // The namespace mode with `partners` partner namespaces, or an error saying why it cannot be
  // used here (not root, no `ip`, the kernel refuses); the caller then uses Loopback().
  static absl::StatusOr<std::unique_ptr<AuditNetwork>> CreateNamespaces(int partners,
                                                                        const std::string& log_dir);
  static std::unique_ptr<AuditNetwork> Loopback();
  ~AuditNetwork();
  AuditNetwork(const AuditNetwork&) = delete;
  AuditNetwork& operator=(const AuditNetwork&) = delete;

  bool namespaces() const { return namespaces_; }
  // "network namespaces (...)" or "loopback": what the test prints.
  std::string Describe() const;

  // argv prefix that runs a program in the vendor's / partner n's namespace (n is 1-based);
  // empty in loopback mode.
  std::vector<std::string> InVendor() const;
  std::vector<std::string> InPartner(int n) const;
  std::string vendor_namespace() const { return vendor_ns_; }  // "" in loopback mode
  std::string partner_namespace(int n) const;                  // "" in loopback mode

  // Addresses: the partner's own address (its veth, or 127.0.0.1), the vendor's end of partner
  // n's link (or 127.0.0.1), and the partner's veth interface (or "lo").
  std::string PartnerIp(int n) const;
  std::string VendorIpFacing(int n) const;
  std::string PartnerInterface(int n) const;

 private:
  AuditNetwork() = default;
  absl::Status Build(int partners);
  absl::Status Ip(const std::vector<std::string>& args);

  bool namespaces_ = false;
  int partners_ = 0;
  std::string suffix_;  // the test's PID
  std::string log_dir_;
  std::string vendor_ns_;
  std::vector<std::string> made_;  // namespaces created, deleted in reverse
};

// Runs `work` on a thread that has joined network namespace `ns` ("" = the caller's), and waits
// for it. Sockets created by `work` belong to that namespace.
absl::Status RunInNamespace(const std::string& ns, const std::function<void()>& work);

// Joins network namespace `ns` on the calling thread only (setns); "" does nothing.
absl::Status JoinNamespaceOnThisThread(const std::string& ns);

}  // namespace fedface::audit_test
