#include "tests/audit/federation/audit_network.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"
#include "tests/integration/distribution/distribution_harness.h"

namespace fedface::audit_test {
namespace {

using testing::ProcessResult;
using testing::RunProcess;

std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

std::string VendorNamespaceName(const std::string& suffix) {
  return absl::StrCat("fedface-audit-v-", suffix);
}
std::string PartnerNamespaceName(int n, const std::string& suffix) {
  return absl::StrCat("fedface-audit-p", n, "-", suffix);
}
// At most 15 characters (IFNAMSIZ - 1): "fa" + PID (<= 7 digits) + side + partner number.
std::string VethName(char side, int n, const std::string& suffix) {
  return absl::StrCat("fa", suffix, std::string(1, side), n);
}

// Deletes namespaces that earlier runs of this test left behind when they were killed: the
// naming pattern is ours and the PID in the name no longer runs.
void RemoveStaleNamespaces(const std::string& ip, const std::string& log_dir) {
  const ProcessResult list = RunProcess({ip, "netns", "list"}, log_dir);
  static const std::regex kOurs("^fedface-audit-(v|p[0-9]+)-([0-9]+)$");
  std::istringstream lines(list.out);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string name = line.substr(0, line.find(' '));
    std::smatch m;
    if (!std::regex_match(name, m, kOurs)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(m[2]));
    if (kill(pid, 0) == -1 && errno == ESRCH) RunProcess({ip, "netns", "del", name}, log_dir);
  }
}

}  // namespace

absl::Status JoinNamespaceOnThisThread(const std::string& ns) {
  if (ns.empty()) return absl::OkStatus();
  const std::string path = "/var/run/netns/" + ns;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  const int rc = setns(fd, CLONE_NEWNET);
  const int err = errno;
  close(fd);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("setns ", ns, ": ", std::strerror(err)));
  return absl::OkStatus();
}

absl::Status RunInNamespace(const std::string& ns, const std::function<void()>& work) {
  absl::Status status;
  std::thread t([&] {
    status = JoinNamespaceOnThisThread(ns);
    if (status.ok()) work();
  });
  t.join();
  return status;
}

std::unique_ptr<AuditNetwork> AuditNetwork::Loopback() {
  return std::unique_ptr<AuditNetwork>(new AuditNetwork());
}

absl::StatusOr<std::unique_ptr<AuditNetwork>> AuditNetwork::CreateNamespaces(
    int partners, const std::string& log_dir) {
  if (geteuid() != 0) return absl::UnavailableError("not running as root");
  if (IpBinary().empty()) return absl::UnavailableError("the `ip` tool (iproute2) is missing");
  if (partners < 1 || partners > 250) return absl::InvalidArgumentError("1..250 partners");
  std::unique_ptr<AuditNetwork> network(new AuditNetwork());
  network->log_dir_ = log_dir;
  network->suffix_ = std::to_string(getpid());
  network->partners_ = partners;
  RETURN_IF_ERROR(network->Build(partners));  // destructor cleans up
  network->namespaces_ = true;
  return network;
}

absl::Status AuditNetwork::Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {IpBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult r = RunProcess(argv, log_dir_);
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("ip ", absl::StrJoin(args, " "), " failed: ", r.err.substr(0, 300)));
}

absl::Status AuditNetwork::Build(int partners) {
  RemoveStaleNamespaces(IpBinary(), log_dir_);
  // No IPv6 (router solicitations, MLD): all a partner sends is on the audited IPv4 link.
  auto no_ipv6 = [&](const std::string& ns, const std::string& iface) {
    std::string script =
        "for f in all default IFACE; do p=/proc/sys/net/ipv6/conf/$f/disable_ipv6; "
        "[ -w $p ] && echo 1 > $p; done; true";
    script.replace(script.find("IFACE"), 5, iface.empty() ? "lo" : iface);
    return RunProcess({IpBinary(), "netns", "exec", ns, "/bin/sh", "-c", script}, log_dir_);
  };
  auto add_namespace = [&](const std::string& ns) -> absl::Status {
    RETURN_IF_ERROR(Ip({"netns", "add", ns}));
    made_.push_back(ns);
    no_ipv6(ns, "");
    return Ip({"-n", ns, "link", "set", "lo", "up"});
  };
  vendor_ns_ = VendorNamespaceName(suffix_);
  RETURN_IF_ERROR(add_namespace(vendor_ns_));
  for (int n = 1; n <= partners; ++n) {
    const std::string ns = PartnerNamespaceName(n, suffix_);
    const std::string vendor_end = VethName('v', n, suffix_);
    const std::string partner_end = VethName('p', n, suffix_);
    RETURN_IF_ERROR(add_namespace(ns));
    RETURN_IF_ERROR(Ip({"link", "add", vendor_end, "netns", vendor_ns_, "type", "veth", "peer",
                        "name", partner_end, "netns", ns}));
    no_ipv6(vendor_ns_, vendor_end);
    no_ipv6(ns, partner_end);
    for (const auto& [where, iface, ip] :
         {std::tuple{vendor_ns_, vendor_end, absl::StrCat("10.231.", n, ".1")},
          std::tuple{ns, partner_end, absl::StrCat("10.231.", n, ".2")}}) {
      RETURN_IF_ERROR(Ip({"-n", where, "addr", "add", ip + "/30", "dev", iface}));
      RETURN_IF_ERROR(Ip({"-n", where, "link", "set", iface, "up"}));
    }
  }
  return absl::OkStatus();
}

AuditNetwork::~AuditNetwork() {
  // Deleting a namespace deletes the veth ends in it, and with them their peers.
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) (void)Ip({"netns", "del", *it});
}

std::string AuditNetwork::Describe() const {
  if (!namespaces_) return "loopback (127.0.0.1; captures on lo filtered by each partner's port)";
  return absl::StrCat("network namespaces (vendor ", vendor_ns_, "; partner N in ",
                      "fedface-audit-pN-", suffix_,
                      " on veth 10.231.N.2/30; captures on each partner's veth)");
}

std::vector<std::string> AuditNetwork::InVendor() const {
  if (!namespaces_) return {};
  return {IpBinary(), "netns", "exec", vendor_ns_};
}

std::vector<std::string> AuditNetwork::InPartner(int n) const {
  if (!namespaces_) return {};
  return {IpBinary(), "netns", "exec", PartnerNamespaceName(n, suffix_)};
}

std::string AuditNetwork::partner_namespace(int n) const {
  return namespaces_ ? PartnerNamespaceName(n, suffix_) : "";
}

std::string AuditNetwork::PartnerIp(int n) const {
  return namespaces_ ? absl::StrCat("10.231.", n, ".2") : "127.0.0.1";
}

std::string AuditNetwork::VendorIpFacing(int n) const {
  return namespaces_ ? absl::StrCat("10.231.", n, ".1") : "127.0.0.1";
}

std::string AuditNetwork::PartnerInterface(int n) const {
  return namespaces_ ? VethName('p', n, suffix_) : "lo";
}

}  // namespace fedface::audit_test
