// `partner_node serve` under a hostile caller (issue 16): connection floods past the file limit,
// HTTP/2 rapid resets, compressed requests, on the vendor port and the local port, between real
// processes over loopback. Costs are read from the partner's /proc, never from the clock; every
// wait is on the partner's progress (its log, its descriptors), with a hang cap.
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedface/v1/evaluation.pb.h"
#include "fedface/v1/local_match.pb.h"
#include "tests/integration/partner_serve/serve_harness.h"
#include "tests/support/proc_stats.h"
#include "tests/support/raw_http2.h"
#include "tests/support/test_env.h"

namespace fedface::testing {
namespace {

int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

// Waits until the partner's log holds `needle` at least `times` times (hang cap 2 minutes).
bool WaitForLog(const PartnerServer& server, const std::string& needle, int times) {
  const absl::Time give_up = absl::Now() + absl::Minutes(2);
  while (Occurrences(server.log(), needle) < times) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

constexpr char kAcceptFailed[] = "Failed accept4";
constexpr char kRestarted[] = "restarted after gRPC stopped accepting";

class PartnerAbuseTest : public ServeTest {};

// A unary call with raw bytes that waits for the listener to be there (wait_for_ready): a dead
// listener (port bound, nothing accepting) ends in DEADLINE_EXCEEDED, a listener being rebuilt
// is waited for.
grpc::Status CallWhenReady(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::string& request) {
  return CallRaw(channel, method, request, 60, {.wait_for_ready = true}).status;
}

// Issue 16, reproduction 1: gRPC 1.51 stops accepting for good once accept4 fails with EMFILE.
// Started with a HARD limit of 256 open files (raising the soft limit cannot help), the partner
// gets 400 idle connections on its vendor port, then on its local port; each time its log shows
// the failed accept and both listeners' rebuilds (the failure does not say which port), and once
// the flood is gone both ports answer valid calls.
TEST_F(PartnerAbuseTest, BothListenersAnswerAfterAConnectionFloodAboveTheHardFileLimit) {
  ASSERT_EQ(access("/usr/bin/prlimit", X_OK), 0) << "prlimit (util-linux) is required";
  const PartnerWorld world = MakePartnerWorld("fd-flood-hard", PartnerSettings{});
  PartnerServer server(world, "fd-flood-hard", {"/usr/bin/prlimit", "--nofile=256:256"});
  ASSERT_TRUE(server.WaitReady()) << "serve did not start:\n" << server.log();
  const pid_t pid = server.pid();
  EXPECT_TRUE(absl::StrContains(ReadText(absl::StrCat("/proc/", pid, "/limits")),
                                "Max open files            256                  256"));
  const int base = OpenFiles(pid);
  const std::string vendor_rebuilt =
      absl::StrCat("vendor_api.listen: listener 127.0.0.1:", server.vendor_port(), " ", kRestarted);
  const std::string local_rebuilt =
      absl::StrCat("local_api.listen: listener ", server.local_address(), " ", kRestarted);
  fedface::v1::LocalDeleteSubjectRequest unknown;
  unknown.set_subject("nobody");
  int round = 0;
  for (const int port : {server.vendor_port(), PortOf(server.local_address())}) {
    const std::string log = server.log();
    const int failures = Occurrences(log, kAcceptFailed);
    const int vendor_rebuilds = Occurrences(log, vendor_rebuilt);
    const int local_rebuilds = Occurrences(log, local_rebuilt);
    std::vector<int> sockets = IdleConnections(port, 400);
    EXPECT_EQ(sockets.size(), 400u) << "the kernel's backlog holds them even when gRPC does not";
    // Progress: the failed accept, then both rebuilds (which close what the flood left open).
    ASSERT_TRUE(WaitForLog(server, kAcceptFailed, failures + 1)) << server.log();
    ASSERT_TRUE(WaitForLog(server, vendor_rebuilt, vendor_rebuilds + 1)) << server.log();
    ASSERT_TRUE(WaitForLog(server, local_rebuilt, local_rebuilds + 1)) << server.log();
    std::cout << "[ measured ] 400 idle connections on port " << port << ": partner open files "
              << base << " before, " << OpenFiles(pid) << " after both rebuilds, limit 256"
              << std::endl;
    for (int fd : sockets) close(fd);
    const grpc::Status vendor =
        CallWhenReady(Vendor(server.vendor_port()), kRunEvaluation,
                      VerificationRequestBytes(absl::StrCat("r-after-flood-", ++round)));
    EXPECT_TRUE(vendor.ok()) << vendor.error_code() << " " << vendor.error_message() << "\n"
                             << server.log();
    // The local API answers too: NOT_FOUND for an unknown subject comes from the service itself.
    const grpc::Status local = CallWhenReady(
        grpc::CreateChannel(server.local_address(), grpc::InsecureChannelCredentials()),
        "/fedface.v1.LocalMatch/DeleteSubject", unknown.SerializeAsString());
    EXPECT_EQ(local.error_code(), grpc::StatusCode::NOT_FOUND)
        << local.error_code() << " " << local.error_message() << "\n"
        << server.log();
  }
}

// Issue 16, reproduction 2 (CVE-2023-44487): 100,000 HEADERS+RST_STREAM pairs on ONE plaintext
// connection must not grow the partner's peak memory by 100 MB (it grew by 1.86 GB), and the
// partner answers valid calls afterwards.
TEST_F(PartnerAbuseTest, RapidResetsOnOneConnectionDoNotGrowMemory) {
  PartnerSettings settings;
  settings.tls = false;
  const PartnerWorld world = MakePartnerWorld("rapid-reset", settings);
  PartnerServer server(world, "rapid-reset");
  ASSERT_TRUE(server.WaitReady()) << "serve did not start:\n" << server.log();
  auto vendor = VendorChannel(pki_, server.vendor_port(), "", true);
  const RawReply warm = CallRaw(vendor, kRunEvaluation, VerificationRequestBytes("r-warm"));
  ASSERT_TRUE(warm.status.ok()) << warm.status.error_message();
  const int64_t peak_before = PeakRssKib(server.pid());
  const double cpu_before = CpuSeconds(server.pid());
  constexpr int64_t kPairs = 100'000;
  const RapidResetResult sent = SendRapidResets(server.vendor_port(), kRunEvaluation, kPairs);
  EXPECT_TRUE(sent.error.empty()) << sent.error;
  EXPECT_TRUE(sent.pairs_sent == kPairs || sent.closed_by_server)
      << sent.pairs_sent << " pairs sent and the connection still open";
  // A valid call after the flood is both the check and the barrier: the partner processed it.
  const RawReply after = CallRaw(VendorChannel(pki_, server.vendor_port(), "", true),
                                 kRunEvaluation, VerificationRequestBytes("r-after-resets"));
  EXPECT_TRUE(after.status.ok()) << after.status.error_message() << "\n" << server.log();
  const int64_t peak_after = PeakRssKib(server.pid());
  std::cout << "[ measured ] rapid reset: " << sent.pairs_sent << " pairs sent"
            << (sent.closed_by_server ? " (the partner closed the connection)" : "") << ", "
            << sent.bytes_received << " bytes received; partner peak RSS " << peak_before / 1024
            << " -> " << peak_after / 1024 << " MiB, RSS now " << RssKib(server.pid()) / 1024
            << " MiB, CPU " << CpuSeconds(server.pid()) - cpu_before << " s" << std::endl;
  EXPECT_LT(peak_after - peak_before, 100 * 1000 * 1000 / 1024) << "the partner held reset streams";
}

// Issue 16, reproduction 3 on the local port: a gzip request to the local API is refused from its
// headers with gRPC's clear status (the vendor port: PartnerServeTest's gzip bomb test).
TEST_F(PartnerAbuseTest, LocalApiRefusesCompressedRequestsBeforeInflatingThem) {
  const PartnerWorld world = MakePartnerWorld("local-gzip", PartnerSettings{});
  PartnerServer server(world, "local-gzip");
  ASSERT_TRUE(server.WaitReady()) << "serve did not start:\n" << server.log();
  const int64_t before = PeakRssKib(server.pid());
  fedface::v1::LocalIdentifyRequest request;
  request.set_image(std::string(15 << 20, '\0'));  // 15 MiB of zeros: 15 KiB gzipped
  request.set_top_k(1);
  const std::string bytes = request.SerializeAsString();
  grpc::GenericStub stub(
      grpc::CreateChannel(server.local_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer send(&slice, 1);
  grpc::ByteBuffer received;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/fedface.v1.LocalMatch/Identify", grpc::StubOptions(), &send, &received,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status status = done.get_future().get();
  std::cout << "[ measured ] local API gzip request: " << status.error_code() << " "
            << status.error_message() << "; partner peak RSS " << before / 1024 << " -> "
            << PeakRssKib(server.pid()) / 1024 << " MiB" << std::endl;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(status.error_message(), "Compression algorithm 'gzip' is disabled.");
  EXPECT_LT(PeakRssKib(server.pid()) - before, 8 * 1024);
}

}  // namespace
}  // namespace fedface::testing
