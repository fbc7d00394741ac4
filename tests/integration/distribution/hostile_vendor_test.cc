// The partner's download checks against a vendor that breaks the protocol: an in-process
// ModelRegistry server (mutual TLS, the real PKI) that serves the genuine signed manifest but
// sends weights chunks with a gap, past the signed size, or above the 1 MiB chunk limit. The
// partner is the real partner_node process.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/config/tls_credentials.h"
#include "fedface/v1/model_registry.grpc.pb.h"
#include "tests/integration/distribution/distribution_harness.h"
#include "tests/support/test_env.h"

namespace fedface::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

enum class Misbehaviour { kGapInOffsets, kBytesBeyondSignedSize, kOversizedChunk };

class HostileRegistry final : public fedface::v1::ModelRegistry::Service {
 public:
  HostileRegistry(std::string package, Misbehaviour how)
      : package_(std::move(package)), how_(how) {}

  grpc::Status ListModels(grpc::ServerContext*, const fedface::v1::ListModelsRequest*,
                          fedface::v1::ListModelsResponse* response) override {
    response->add_models()->set_version("1.0.0");
    return grpc::Status::OK;
  }

  grpc::Status GetManifest(grpc::ServerContext*, const fedface::v1::GetManifestRequest*,
                           fedface::v1::GetManifestResponse* response) override {
    response->set_manifest_json(ReadText(package_ + "/manifest.json"));
    response->set_manifest_sig(ReadText(package_ + "/manifest.sig"));
    for (const auto& entry : fs::directory_iterator(package_ + "/selftest")) {
      auto* file = response->add_self_test_files();
      file->set_path("selftest/" + entry.path().filename().string());
      file->set_content(ReadText(entry.path().string()));
    }
    return grpc::Status::OK;
  }

  grpc::Status DownloadWeights(grpc::ServerContext*, const fedface::v1::DownloadWeightsRequest*,
                               grpc::ServerWriter<fedface::v1::WeightsChunk>* writer) override {
    const std::string weights = ReadText(package_ + "/weights.dat");
    fedface::v1::WeightsChunk chunk;
    switch (how_) {
      case Misbehaviour::kGapInOffsets:
        chunk.set_offset(0);
        chunk.set_data(weights.substr(0, 65536));
        writer->Write(chunk);
        chunk.set_offset(2 * 65536);  // skips 64 KiB
        chunk.set_data(weights.substr(2 * 65536, 65536));
        writer->Write(chunk);
        break;
      case Misbehaviour::kBytesBeyondSignedSize:
        for (size_t offset = 0; offset < weights.size(); offset += 1 << 20) {
          chunk.set_offset(offset);
          chunk.set_data(weights.substr(offset, 1 << 20));
          writer->Write(chunk);
        }
        chunk.set_offset(weights.size());
        chunk.set_data(std::string(4096, 'X'));
        writer->Write(chunk);
        break;
      case Misbehaviour::kOversizedChunk:
        chunk.set_offset(0);
        chunk.set_data(weights.substr(0, 2 << 20));
        writer->Write(chunk);
        break;
    }
    return grpc::Status::OK;
  }

 private:
  std::string package_;
  Misbehaviour how_;
};

class HostileVendorTest : public ::testing::TestWithParam<Misbehaviour> {
 protected:
  void SetUp() override {
    package_ = TestPackageDir();
    FEDFACE_SKIP_IF_MISSING(package_, "the signed test package");
    FEDFACE_SKIP_IF_MISSING(TestVendorKey(), "the test vendor key");
    dir_ = MakeTempDir("hostile-vendor");
    pki_ = dir_ + "/pki";
    ASSERT_TRUE(MakeCertificates(pki_, {"acme"}));
    absl::StatusOr<TlsMaterial> tls =
        LoadTlsMaterial({pki_ + "/ca.crt", pki_ + "/registry.crt", pki_ + "/registry.key"});
    ASSERT_TRUE(tls.ok()) << tls.status();
    service_ = std::make_unique<HostileRegistry>(package_, GetParam());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", MutualTlsServerCredentials(*tls), &port_);
    builder.RegisterService(service_.get());
    builder.SetMaxSendMessageSize(32 << 20);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr && port_ != 0);
    config_ = dir_ + "/partner.yaml";
    WriteText(config_, PartnerConfigYaml(absl::StrCat("127.0.0.1:", port_), pki_, "acme",
                                         TestVendorKey() + ".pub", dir_ + "/cache"));
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::string package_, dir_, pki_, config_;
  int port_ = 0;
  std::unique_ptr<HostileRegistry> service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_P(HostileVendorTest, PartnerRejectsStreamThatBreaksTheProtocol) {
  ProcessResult r = RunProcess({PartnerNodeBinary(), "models", "pull", "--config", config_}, dir_);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("refused version 1.0.0"));
  EXPECT_THAT(r.err, HasSubstr("active model stays none"));
  EXPECT_FALSE(fs::exists(dir_ + "/cache/active"));
  EXPECT_FALSE(fs::exists(dir_ + "/cache/1.0.0"));
  switch (GetParam()) {
    case Misbehaviour::kGapInOffsets:
      EXPECT_THAT(r.err, HasSubstr("chunk at offset 131072, expected 65536"));
      break;
    case Misbehaviour::kBytesBeyondSignedSize:
      EXPECT_THAT(r.err, HasSubstr("beyond the"));
      break;
    case Misbehaviour::kOversizedChunk:
      EXPECT_THAT(r.err, HasSubstr("chunk of 2097152 bytes"));
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(Misbehaviours, HostileVendorTest,
                         ::testing::Values(Misbehaviour::kGapInOffsets,
                                           Misbehaviour::kBytesBeyondSignedSize,
                                           Misbehaviour::kOversizedChunk),
                         [](const ::testing::TestParamInfo<Misbehaviour>& info) {
                           switch (info.param) {
                             case Misbehaviour::kGapInOffsets:
                               return "GapInOffsets";
                             case Misbehaviour::kBytesBeyondSignedSize:
                               return "BytesBeyondSignedSize";
                             case Misbehaviour::kOversizedChunk:
                               return "OversizedChunk";
                           }
                           return "Unknown";
                         });

}  // namespace
}  // namespace fedface::testing
