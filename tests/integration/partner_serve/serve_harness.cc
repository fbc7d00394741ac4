#include "tests/integration/partner_serve/serve_harness.h"

#include <grpcpp/generic/generic_stub.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/sha256.h"
#include "fedface/v1/evaluation.pb.h"
#include "tests/support/test_env.h"

namespace fedface::testing {
namespace fs = std::filesystem;

namespace {

constexpr char kVersion[] = "1.0.0";  // tests/support/make_test_package.sh

std::string PartnerYaml(const ServeFixture& f, const std::string& dir, const std::string& cache,
                        const PartnerSettings& s) {
  std::string yaml = absl::StrCat(
      "vendor:\n  address: \"", s.registry_address, "\"\n  ca_cert: ", f.pki,
      "/ca.crt\n  client_cert: ", f.pki, "/partners/acme/client.crt\n  client_key: ", f.pki,
      "/partners/acme/client.key\n  signing_key: ", f.signing_key, "\nmodel_cache:\n  dir: ", cache,
      "\ngallery:\n  db: ", dir, "/gallery.db\n");
  if (s.with_gallery_dir) absl::StrAppend(&yaml, "  dir: ", f.gallery_dir, "\n");
  absl::StrAppend(&yaml, "engine:\n  workers: 2\nvendor_api:\n  listen: \"127.0.0.1:0\"\n");
  if (s.tls) {
    const std::string listener =
        s.listener_certificate.empty() ? f.pki + "/partners/acme/server" : s.listener_certificate;
    absl::StrAppend(&yaml, "  ca_cert: ", f.pki, "/ca.crt\n  cert: ", listener,
                    ".crt\n  key: ", listener, ".key\n");
  } else {
    absl::StrAppend(&yaml, "  tls: false\n");
  }
  if (s.rate_limit_replays >= 0) {
    absl::StrAppend(&yaml, "  rate_limit:\n    replays: ", s.rate_limit_replays, "\n");
  }
  absl::StrAppend(&yaml, "  allowed_vendors: [", absl::StrJoin(s.allowed_vendors, ", "),
                  "]\nlocal_api:\n  listen: \"127.0.0.1:0\"\negress:\n  k_minimum: ", s.k_minimum,
                  "\n  differential_privacy: ", s.differential_privacy ? "true" : "false",
                  "\n  epsilon_per_release: \"1\"\n  epsilon_budget: \"", s.epsilon_budget,
                  "\"\n  budget_path: ", dir, "/budget.db\n  held_releases_path: ", dir,
                  "/held.db\n  require_approval: ", s.require_approval ? "true" : "false",
                  "\nledger:\n  path: ", dir,
                  "/ledger.db\nevaluation:\n  evaluate_other_versions: ",
                  s.evaluate_other_versions ? "true" : "false", "\n");
  if (s.max_reembed_images_per_round >= 0) {
    absl::StrAppend(&yaml, "  max_reembed_images_per_round: ", s.max_reembed_images_per_round,
                    "\n");
  }
  if (s.max_reembed_images_per_day >= 0) {
    absl::StrAppend(&yaml, "  max_reembed_images_per_day: ", s.max_reembed_images_per_day, "\n");
  }
  return yaml;
}

// Synthetic subjects (labelled so): each real subject's photos mirrored and brightened. They are
// the same people as the real subjects, so their "non-mated" scores against those are low; the
// tests need the subject COUNT (k-minimum), not realistic impostors.
bool WriteSyntheticSubject(const fs::path& real, const fs::path& out) {
  fs::create_directories(out);
  for (const auto& entry : fs::directory_iterator(real)) {
    cv::Mat image = cv::imread(entry.path().string(), cv::IMREAD_COLOR);
    if (image.empty()) return false;
    cv::Mat flipped, brighter;
    cv::flip(image, flipped, 1);
    flipped.convertTo(brighter, -1, 1.1, 12);
    if (!cv::imwrite((out / entry.path().filename()).string(), brighter)) return false;
  }
  return true;
}

// The fixture's files under `root`.
ServeFixture FixtureAt(const std::string& root) {
  ServeFixture f;
  f.root = root;
  f.pki = root + "/pki";
  f.signing_key = TestVendorKey() + ".pub";
  f.vendor_key = TestVendorKey();
  f.cache = root + "/cache";
  f.gallery_dir = root + "/gallery";
  f.gallery_db = root + "/template/gallery.db";
  return f;
}

// Builds the fixture's files in `root` (an empty folder); "" or what failed.
std::string BuildFixture(const std::string& root, const std::string& bbt) {
  const ServeFixture f = FixtureAt(root);
  if (!MakeCertificates(f.pki, {"intruder", "acme"})) {
    return "scripts/make_certs.sh failed";
  }
  std::error_code ec;
  fs::create_directories(f.cache);
  fs::copy(TestPackageDir(), f.cache + "/" + kVersion, fs::copy_options::recursive, ec);
  if (ec) return "cannot copy the test package: " + ec.message();
  WriteText(f.cache + "/active", absl::StrCat(kVersion, "\n"));

  fs::create_directories(f.gallery_dir);
  for (const auto& subject : fs::directory_iterator(bbt)) {
    if (!subject.is_directory()) continue;
    const std::string name = subject.path().filename().string();
    fs::copy(subject.path(), f.gallery_dir + "/" + name, fs::copy_options::recursive, ec);
    if (ec || !WriteSyntheticSubject(subject.path(), f.gallery_dir + "/synthetic-flip-" + name)) {
      return "cannot build the test gallery: " + ec.message();
    }
  }

  // The template gallery store, enrolled by the real command.
  const std::string dir = root + "/template";
  fs::create_directories(dir);
  WriteText(dir + "/partner.yaml", PartnerYaml(f, dir, f.cache, PartnerSettings{}));
  ProcessResult enrolled =
      RunProcess({PartnerNodeBinary(), "enroll", "--config", dir + "/partner.yaml"}, dir);
  if (enrolled.exit_code != 0) return "partner_node enroll failed: " + enrolled.err;
  WriteText(root + "/.complete", "");
  return "";
}

// Names the fixture after the binary and the package it is made with (their modification
// times), so a rebuilt binary gets a new fixture and no test process ever deletes one that
// another process may be using.
std::string FixtureKey() {
  std::string stamps;
  for (const std::string& path : {PartnerNodeBinary(), TestPackageDir() + "/manifest.sig"}) {
    std::error_code ec;
    const auto t = fs::last_write_time(path, ec);
    absl::StrAppend(&stamps, path, "@", ec ? 0 : t.time_since_epoch().count(), ";");
  }
  return Sha256Hex(stamps).substr(0, 16);
}

ServeFixture LoadFixture() {
  ServeFixture f;
  if (TestPackageDir().empty() || TestVendorKey().empty()) {
    f.skip_reason = "the signed test package (fixture_signed_package) is absent";
    return f;
  }
  const std::string bbt = DatasetsDir().empty() ? "" : DatasetsDir() + "/faceapi-bbt/gallery";
  if (bbt.empty() || !fs::is_directory(bbt)) {
    f.skip_reason = "../shared/datasets/faceapi-bbt is absent";
    return f;
  }
  // Built once per build tree (and binary) and shared by the test processes ctest starts, one
  // per test: made in a private folder, then renamed into place.
  const std::string shared =
      Env("FEDFACE_BINARY_DIR") + "/test_fixtures/partner_serve-" + FixtureKey();
  if (fs::exists(shared + "/.complete")) return FixtureAt(shared);
  std::error_code ec;
  fs::create_directories(fs::path(shared).parent_path(), ec);
  std::string building = shared + ".build-XXXXXX";
  if (::mkdtemp(building.data()) == nullptr) {
    f.error = "cannot create " + building;
    return f;
  }
  if (std::string error = BuildFixture(building, bbt); !error.empty()) {
    f.error = error;
    return f;
  }
  fs::rename(building, shared, ec);
  if (ec) {
    // Another test process finished first: use its fixture.
    std::error_code ignored;
    fs::remove_all(building, ignored);
    if (!fs::exists(shared + "/.complete")) {
      f.error = "cannot move the fixture into " + shared + ": " + ec.message();
      return f;
    }
  }
  return FixtureAt(shared);
}

}  // namespace

const ServeFixture& GetServeFixture() {
  static const ServeFixture fixture = LoadFixture();
  return fixture;
}

void ServeTest::SetUp() {
  const ServeFixture& f = GetServeFixture();
  if (!f.skip_reason.empty()) FEDFACE_SKIP_OR_FAIL(f.skip_reason);
  ASSERT_TRUE(f.error.empty()) << f.error;
  pki_ = f.pki;
}

PartnerWorld MakePartnerWorld(const std::string& tag, const PartnerSettings& settings) {
  const ServeFixture& f = GetServeFixture();
  PartnerWorld w;
  w.dir = MakeTempDir(tag);
  std::error_code ec;
  fs::copy_file(f.gallery_db, w.dir + "/gallery.db", ec);
  if (ec)
    ADD_FAILURE() << "cannot copy the template gallery " << f.gallery_db << ": " << ec.message();
  w.config = w.dir + "/partner.yaml";
  w.ledger = w.dir + "/ledger.db";
  w.budget = w.dir + "/budget.db";
  w.held = w.dir + "/held.db";
  WriteText(w.config,
            PartnerYaml(f, w.dir, settings.cache.empty() ? f.cache : settings.cache, settings));
  return w;
}

int GalleryImageCount() {
  int images = 0;
  for (const auto& entry : fs::recursive_directory_iterator(GetServeFixture().gallery_dir)) {
    if (entry.is_regular_file()) ++images;
  }
  return images;
}

std::string CopyOfModelCache(const std::string& dir) {
  const std::string cache = dir + "/cache";
  std::error_code ec;
  fs::copy(GetServeFixture().cache, cache, fs::copy_options::recursive, ec);
  return ec ? "" : cache;
}

namespace {
std::vector<std::string> Prefixed(std::vector<std::string> prefix,
                                  const std::vector<std::string>& argv) {
  prefix.insert(prefix.end(), argv.begin(), argv.end());
  return prefix;
}
}  // namespace

PartnerServer::PartnerServer(const PartnerWorld& world, const std::string& tag,
                             const std::vector<std::string>& prefix)
    : out_path_(absl::StrCat(world.dir, "/serve-", tag, ".out")),
      err_path_(absl::StrCat(world.dir, "/serve-", tag, ".err")),
      process_(Prefixed(prefix, {PartnerNodeBinary(), "serve", "--config", world.config}),
               out_path_, err_path_) {}

bool PartnerServer::WaitReady() {
  static const std::regex kReady("vendor API on [^ ]*:([0-9]+) .*; local API on ([^;]+);");
  const absl::Time end = absl::Now() + absl::Seconds(120);
  while (absl::Now() < end) {
    std::smatch m;
    const std::string out = ReadText(out_path_);
    if (std::regex_search(out, m, kReady)) {
      vendor_port_ = std::stoi(m[1]);
      local_address_ = m[2];
      return true;
    }
    if (!process_.Running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string PartnerServer::startup_line() const { return ReadText(out_path_); }
std::string PartnerServer::log() const { return ReadText(err_path_); }

int PartnerServer::Stop() {
  process_.Signal(SIGTERM);
  return process_.Wait(absl::Seconds(60));
}

std::shared_ptr<grpc::Channel> VendorChannel(const std::string& pki, int port,
                                             const std::string& client, bool plaintext) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // no connection shared between tests
  const std::string target = absl::StrCat("127.0.0.1:", port);
  if (plaintext) {
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadText(pki + "/ca.crt");
  if (!client.empty()) {
    const std::string base = client.front() == '/' ? client : absl::StrCat(pki, "/", client);
    options.pem_cert_chain = ReadText(base + ".crt");
    options.pem_private_key = ReadText(base + ".key");
  }
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), args);
}

RawReply CallRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                 const std::string& request, int deadline_seconds, RawCallOptions options) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  if (options.gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  context.set_wait_for_ready(options.wait_for_ready);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_seconds));
  grpc::Slice slice(request);
  grpc::ByteBuffer send(&slice, 1);
  grpc::ByteBuffer received;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &send, &received,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  RawReply reply;
  reply.status = done.get_future().get();
  std::vector<grpc::Slice> slices;
  if (reply.status.ok() && received.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      reply.bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return reply;
}

std::string VerificationRequestBytes(const std::string& round) {
  fedface::v1::RunEvaluationRequest r;
  r.set_round_id(round);
  r.set_model_version("1.0.0");
  r.set_protocol(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION);
  r.set_seed(7);
  return r.SerializeAsString();
}

}  // namespace fedface::testing
