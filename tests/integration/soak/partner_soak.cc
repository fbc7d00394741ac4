// The soak of issue 16 (item 5), run by scripts/soak.sh, never by ctest: one `partner_node serve`
// (plaintext vendor port on loopback, started with a limit of 1024 open files) gets, for
// FEDFACE_SOAK_MINUTES minutes at once,
//   - valid vendor calls (a new round each, every fifth a replay of an earlier one),
//   - valid local calls (enrol a new subject, identify, verify it),
//   - hostile traffic: idle-connection floods past the partner's file limit, HTTP/2 rapid resets,
//     gzip requests on both ports, a 39.7 MP PNG of 116 KB, garbage bytes on both ports.
// Every interval (FEDFACE_SOAK_INTERVAL_SECONDS, 60) it prints the partner's RSS, open files and
// CPU (from /proc), the p50/p99 latency of the valid calls and their status counts. It fails
// when an interval answered no valid vendor call or no valid local call, when the RSS grew by
// more than FEDFACE_SOAK_MAX_RSS_GROWTH_MIB (512) over the first interval's, or when anything
// was lost: every vendor reply (message or refusal) must be in the egress ledger as the bytes
// received, and every subject enrolled must still verify at the end.
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/common/sha256.h"
#include "core/config/server_limits.h"
#include "fedface/v1/evaluation.pb.h"
#include "fedface/v1/local_match.grpc.pb.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/vendor_status.h"
#include "tests/integration/partner_serve/serve_harness.h"
#include "tests/support/proc_stats.h"
#include "tests/support/raw_http2.h"
#include "tests/support/test_env.h"

namespace fedface::testing {
namespace {

namespace fs = std::filesystem;

int64_t EnvInt(const char* name, int64_t fallback) {
  const std::string value = Env(name);
  return value.empty() ? fallback : std::stoll(value);
}

// Latencies and status counts of one kind of valid call within the current interval.
class CallStats {
 public:
  void Add(double ms, grpc::StatusCode code) {
    std::lock_guard<std::mutex> lock(mu_);
    ms_.push_back(ms);
    ++codes_[code];
  }
  struct Interval {
    size_t calls = 0;
    double p50 = 0, p99 = 0;
    int answered = 0;    // a status from the partner itself (OK or a refusal it chose)
    int unanswered = 0;  // UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED: the partner did not answer
    std::string codes;
  };
  Interval TakeInterval() {
    std::lock_guard<std::mutex> lock(mu_);
    Interval out;
    out.calls = ms_.size();
    std::sort(ms_.begin(), ms_.end());
    if (!ms_.empty()) {
      out.p50 = ms_[ms_.size() / 2];
      out.p99 = ms_[std::min(ms_.size() - 1, ms_.size() * 99 / 100)];
    }
    for (const auto& [code, n] : codes_) {
      const bool lost = code == grpc::StatusCode::UNAVAILABLE ||
                        code == grpc::StatusCode::DEADLINE_EXCEEDED ||
                        code == grpc::StatusCode::CANCELLED;
      (lost ? out.unanswered : out.answered) += n;
      absl::StrAppend(&out.codes, out.codes.empty() ? "" : " ", "code", code, "=", n);
    }
    ms_.clear();
    codes_.clear();
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<double> ms_;
  std::map<grpc::StatusCode, int> codes_;
};

void SendGarbage(int port) {
  for (int fd : IdleConnections(port, 1)) {
    const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(4096, '\xff');
    (void)!write(fd, junk.data(), junk.size());
    close(fd);
  }
}

// A unary call with raw bytes both ways. Valid calls wait for the partner to be reachable (a
// listener being rebuilt is briefly unbound): only a call whose deadline passes is unanswered.
// `gzip`: the request is compressed (the partner must refuse it before inflating).
RawReply Call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
              const std::string& bytes, bool gzip = false) {
  return CallRaw(channel, method, bytes, 60, {.wait_for_ready = !gzip, .gzip = gzip});
}

template <typename Message>
grpc::Status LocalCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                       const google::protobuf::Message& request, Message* response) {
  const RawReply reply =
      Call(channel, absl::StrCat("/fedface.v1.LocalMatch/", method), request.SerializeAsString());
  if (reply.status.ok() && !response->ParseFromString(reply.bytes)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "unparsable reply");
  }
  return reply.status;
}

std::vector<std::string> GalleryImages() {
  std::vector<std::string> images;
  for (const auto& entry : fs::recursive_directory_iterator(GetServeFixture().gallery_dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    images.push_back(bytes.str());
  }
  return images;
}

double MsSince(absl::Time start) { return absl::ToDoubleMilliseconds(absl::Now() - start); }

TEST(PartnerSoak, ValidCallsAreAnsweredUnderHostileTrafficAndNothingIsLost) {
  const ServeFixture& f = GetServeFixture();
  if (!f.skip_reason.empty()) FEDFACE_SKIP_OR_FAIL(f.skip_reason);
  ASSERT_TRUE(f.error.empty()) << f.error;
  ASSERT_TRUE(RaiseOpenFileLimit().ok()) << "the floods need more descriptors than 1024";
  const int64_t minutes = EnvInt("FEDFACE_SOAK_MINUTES", 10);
  const int64_t interval_s = EnvInt("FEDFACE_SOAK_INTERVAL_SECONDS", 60);
  const int64_t max_growth_mib = EnvInt("FEDFACE_SOAK_MAX_RSS_GROWTH_MIB", 512);
  const int flood = static_cast<int>(EnvInt("FEDFACE_SOAK_FLOOD_CONNECTIONS", 1100));
  const int64_t resets = EnvInt("FEDFACE_SOAK_RESETS_PER_ROUND", 10000);

  PartnerSettings settings;
  settings.tls = false;  // the raw HTTP/2 client speaks plaintext (loopback only)
  settings.epsilon_budget = "100000";
  const PartnerWorld world = MakePartnerWorld("soak", settings);
  PartnerServer server(world, "soak", {"/usr/bin/prlimit", "--nofile=1024:1024"});
  ASSERT_TRUE(server.WaitReady()) << "serve did not start:\n" << server.log();
  const pid_t pid = server.pid();
  const int vendor_port = server.vendor_port();
  const int local_port =
      std::stoi(server.local_address().substr(server.local_address().rfind(':') + 1));
  const std::vector<std::string> images = GalleryImages();
  ASSERT_GE(images.size(), 2u);
  std::vector<uchar> png;
  ASSERT_TRUE(cv::imencode(".png", cv::Mat(5440, 7300, CV_8UC3, cv::Scalar(0, 0, 0)), png,
                           {cv::IMWRITE_PNG_COMPRESSION, 9}));
  const std::string huge_png(png.begin(), png.end());

  std::atomic<bool> stop{false};
  CallStats vendor_stats, local_stats;
  std::mutex replies_mu;
  std::vector<std::string> vendor_reply_hashes;  // of every answered vendor call, as received
  std::vector<std::string> enrolled;             // subjects whose Enroll returned OK
  std::atomic<int64_t> hostile_rounds{0}, reset_pairs{0}, floods{0};
  std::mutex hostile_mu;
  std::map<std::string, int> hostile_outcomes;  // "what: code" -> count
  auto note_hostile = [&](const std::string& what, int code) {
    std::lock_guard<std::mutex> lock(hostile_mu);
    ++hostile_outcomes[absl::StrCat(what, ": code", code)];
  };

  // Valid vendor calls: a new round each, every fifth a replay of round 0.
  std::thread vendor([&] {
    auto channel = VendorChannel(f.pki, vendor_port, "", true);
    for (int64_t n = 0; !stop; ++n) {
      const std::string round = n % 5 == 4 ? "soak-0" : absl::StrCat("soak-", n);
      const absl::Time start = absl::Now();
      const RawReply reply = Call(channel, kRunEvaluation, VerificationRequestBytes(round));
      vendor_stats.Add(MsSince(start), reply.status.error_code());
      const grpc::StatusCode code = reply.status.error_code();
      if (code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
          code == grpc::StatusCode::CANCELLED) {
        continue;  // cancelled by a listener rebuild, or never answered: not a reply
      }
      std::lock_guard<std::mutex> lock(replies_mu);
      vendor_reply_hashes.push_back(
          reply.status.ok()
              ? Sha256Hex(reply.bytes)
              : Sha256Hex(partner::RefusalBytes(absl::Status(static_cast<absl::StatusCode>(code),
                                                             reply.status.error_message()))));
    }
  });

  // Valid local calls: enrol a new subject, identify with another image.
  std::thread local([&] {
    auto channel = grpc::CreateChannel(server.local_address(), grpc::InsecureChannelCredentials());
    for (int64_t n = 0; !stop; ++n) {
      const std::string subject = absl::StrCat("soak-subject-", n);
      fedface::v1::LocalEnrollRequest enroll;
      enroll.set_subject(subject);
      enroll.set_image(images[n % images.size()]);
      fedface::v1::LocalEnrollResponse enrolled_reply;
      absl::Time start = absl::Now();
      grpc::Status s = LocalCall(channel, "Enroll", enroll, &enrolled_reply);
      local_stats.Add(MsSince(start), s.error_code());
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(replies_mu);
        enrolled.push_back(subject);
      }
      fedface::v1::LocalIdentifyRequest identify;
      identify.set_image(images[(n + 1) % images.size()]);
      identify.set_top_k(3);
      fedface::v1::LocalIdentifyResponse identified;
      start = absl::Now();
      s = LocalCall(channel, "Identify", identify, &identified);
      local_stats.Add(MsSince(start), s.error_code());
    }
  });

  // Hostile traffic, one kind after another, round after round.
  std::thread hostile([&] {
    for (int64_t round = 0; !stop; ++round) {
      const int port = round % 2 == 0 ? vendor_port : local_port;
      {  // a flood past the partner's 1024 descriptors, held until the partner stops accepting
        std::vector<int> sockets = IdleConnections(port, flood);
        const absl::Time until = absl::Now() + absl::Seconds(3);
        while (!stop && absl::Now() < until) absl::SleepFor(absl::Milliseconds(50));
        for (int fd : sockets) close(fd);
        ++floods;
      }
      if (stop) break;
      const RapidResetResult r = SendRapidResets(vendor_port, kRunEvaluation, resets);
      reset_pairs += r.pairs_sent;
      note_hostile("rapid reset closed by the partner", r.closed_by_server ? 1 : 0);
      if (stop) break;
      note_hostile("vendor gzip", Call(VendorChannel(f.pki, vendor_port, "", true), kRunEvaluation,
                                       std::string(8 << 20, '\0'), true)
                                      .status.error_code());
      fedface::v1::LocalIdentifyRequest big;
      big.set_image(std::string(15 << 20, '\0'));
      big.set_top_k(1);
      auto local_channel =
          grpc::CreateChannel(server.local_address(), grpc::InsecureChannelCredentials());
      note_hostile("local gzip", Call(local_channel, "/fedface.v1.LocalMatch/Identify",
                                      big.SerializeAsString(), true)
                                     .status.error_code());
      fedface::v1::LocalIdentifyRequest png_request;
      png_request.set_image(huge_png);
      png_request.set_top_k(1);
      fedface::v1::LocalIdentifyResponse png_reply;
      note_hostile("local 39.7 MP PNG",
                   LocalCall(local_channel, "Identify", png_request, &png_reply).error_code());
      SendGarbage(vendor_port);
      SendGarbage(local_port);
      ++hostile_rounds;
    }
  });

  // The sampler: one line per interval, from the partner's /proc and the callers' statistics.
  struct Sample {
    int64_t rss_kib;
    bool vendor_answered, local_answered;
  };
  std::vector<Sample> samples;
  std::cout << absl::StrFormat("%-4s %9s %9s %6s %7s | %-44s | %-44s | %s\n", "min", "rss_MiB",
                               "peak_MiB", "fds", "cpu_s",
                               "vendor: n p50/p99 ms answered/unanswered",
                               "local: n p50/p99 ms answered/unanswered", "hostile")
            << std::flush;
  const int64_t intervals = std::max<int64_t>(1, minutes * 60 / interval_s);
  for (int64_t i = 1; i <= intervals; ++i) {
    absl::SleepFor(absl::Seconds(interval_s));
    const CallStats::Interval v = vendor_stats.TakeInterval();
    const CallStats::Interval l = local_stats.TakeInterval();
    samples.push_back({RssKib(pid), v.answered > 0, l.answered > 0});
    const std::string log = server.log();
    std::cout << absl::StrFormat(
                     "%-4.1f %9d %9d %6d %7.1f | %5d %7.0f/%-7.0f %5d/%-5d %-9s | %5d %7.0f/%-7.0f "
                     "%5d/%-5d %-9s | rounds %d, floods %d, resets %d; log: %d failed accepts, %d "
                     "rebuilds\n",
                     static_cast<double>(i * interval_s) / 60, RssKib(pid) / 1024,
                     PeakRssKib(pid) / 1024, OpenFiles(pid), CpuSeconds(pid), v.calls, v.p50, v.p99,
                     v.answered, v.unanswered, v.codes, l.calls, l.p50, l.p99, l.answered,
                     l.unanswered, l.codes, hostile_rounds.load(), floods.load(),
                     reset_pairs.load(), Occurrences(log, "Failed accept4"),
                     Occurrences(log, "restarted after"))
              << std::flush;
  }
  stop = true;
  vendor.join();
  local.join();
  hostile.join();
  for (const auto& [what, n] : hostile_outcomes)
    std::cout << "hostile " << what << " x" << n << "\n";

  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_TRUE(samples[i].vendor_answered) << "interval " << i + 1 << ": no vendor call answered";
    EXPECT_TRUE(samples[i].local_answered) << "interval " << i + 1 << ": no local call answered";
  }
  ASSERT_FALSE(samples.empty());
  const int64_t growth_kib = RssKib(pid) - samples.front().rss_kib;
  std::cout << "RSS growth after the first interval: " << growth_kib / 1024 << " MiB (bound "
            << max_growth_mib << " MiB)" << std::endl;
  EXPECT_LT(growth_kib, max_growth_mib * 1024) << "the partner's memory kept growing";

  // Nothing lost: every reply the vendor got is in the ledger as the bytes received...
  auto ledger =
      partner::EgressLedger::Open(world.ledger, partner::EgressLedger::OpenMode::kMustExist);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  absl::StatusOr<std::vector<partner::LedgerEntry>> entries = (*ledger)->Entries();
  ASSERT_TRUE(entries.ok()) << entries.status();
  // (Rate-limit refusals are ledgered once per window: one row of kRateLimitLedgerType with
  // the refusal's bytes stands for every identical refusal of its window, as in the audit.)
  std::multiset<std::string> ledgered;
  std::set<std::string> rate_limit_windows;
  for (const partner::LedgerEntry& e : *entries) {
    if (e.message_type == partner::kRateLimitLedgerType) {
      rate_limit_windows.insert(e.message_sha256);
    } else {
      ledgered.insert(e.message_sha256);
    }
  }
  int missing = 0;
  int64_t rate_limited = 0;
  for (const std::string& hash : vendor_reply_hashes) {
    auto at = ledgered.find(hash);
    if (at == ledgered.end() && rate_limit_windows.count(hash)) {
      ++rate_limited;
    } else if (at == ledgered.end()) {
      ++missing;
    } else {
      ledgered.erase(at);
    }
  }
  std::cout << "vendor replies " << vendor_reply_hashes.size() << ", ledger entries "
            << entries->size() << " (" << rate_limit_windows.size()
            << " rate-limit window rows covering " << rate_limited
            << " refusals), replies not in the ledger " << missing << std::endl;
  EXPECT_EQ(missing, 0) << "a vendor reply left without its ledger entry";
  // ... and every subject enrolled still verifies.
  auto channel = grpc::CreateChannel(server.local_address(), grpc::InsecureChannelCredentials());
  int lost_subjects = 0;
  for (const std::string& subject : enrolled) {
    fedface::v1::LocalVerifyRequest request;
    request.set_subject(subject);
    request.set_image(images[std::stoll(subject.substr(subject.rfind('-') + 1)) % images.size()]);
    fedface::v1::LocalVerifyResponse response;
    const grpc::Status s = LocalCall(channel, "Verify", request, &response);
    if (!s.ok() || response.compared_faces() < 1) ++lost_subjects;
  }
  std::cout << "subjects enrolled " << enrolled.size() << ", lost " << lost_subjects << std::endl;
  EXPECT_EQ(lost_subjects, 0) << "an enrolled subject no longer verifies";
  EXPECT_EQ(server.Stop(), 0) << server.log();
}

}  // namespace
}  // namespace fedface::testing
