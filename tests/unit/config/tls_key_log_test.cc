// The TLS key log a process writes for the traffic audit (core/config/tls_key_log_file.h): gRPC's
// own traps (a bare '\r' per line, "w+" truncation, a 0644 file) do not reach the key log, and a
// real mutual-TLS handshake between this project's credentials logs the four TLS 1.3 secrets of
// the session. Also the loopback test that keeps a plaintext vendor listener local.
#include "partner_node/audit/tls_key_log.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/listen_address.h"
#include "core/config/tls_credentials.h"
#include "core/config/tls_key_log_file.h"
#include "tests/support/child_process.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

// Waits until `path` holds at least `lines` newline-terminated lines (the relay is a thread):
// progress, not time; the two-minute cap only stops a hang on a loaded machine.
std::string WaitForLines(const std::string& path, int lines) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  std::string text = testing::ReadText(path);
  while (std::count(text.begin(), text.end(), '\n') < lines &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    text = testing::ReadText(path);
  }
  return text;
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0;
}

TEST(TlsKeyLogFile, AppendsWholeLinesWithNewlinesMode0600AcrossTruncatingReopens) {
  const std::string dir = testing::MakeTempDir("keylog-file-test");
  const std::string path = dir + "/keys.log";
  const mode_t old_umask = umask(022);  // what gRPC alone would turn into a 0644 file
  absl::StatusOr<const TlsKeyLogFile*> file = TlsKeyLogFile::Open(path);
  umask(old_umask);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_NE((*file)->grpc_path(), path);
  // The same path again: the same relay (gRPC shares one logger per path, so do we).
  absl::StatusOr<const TlsKeyLogFile*> again = TlsKeyLogFile::Open(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *file);

  // What gRPC 1.51 does: fopen("w+"), one fwrite of the line and a '\r', fflush; a later
  // logger opens "w+" again.
  for (const char* line :
       {"CLIENT_HANDSHAKE_TRAFFIC_SECRET aa bb\r", "SERVER_TRAFFIC_SECRET_0 cc dd\r"}) {
    FILE* f = std::fopen((*file)->grpc_path().c_str(), "w+");
    ASSERT_NE(f, nullptr);
    std::fputs(line, f);
    std::fflush(f);
    std::fclose(f);
  }
  const std::string text = WaitForLines(path, 2);
  EXPECT_EQ(text, "CLIENT_HANDSHAKE_TRAFFIC_SECRET aa bb\nSERVER_TRAFFIC_SECRET_0 cc dd\n");
}

TEST(ListenAddress, OnlyLoopbackAndUnixSocketsAreLocal) {
  for (const char* local : {"127.0.0.1:7543", "127.1.2.3:0", "[::1]:7543", "unix:/tmp/x.sock",
                            "unix-abstract:fedface"}) {
    EXPECT_TRUE(IsLoopbackListenAddress(local)) << local;
  }
  for (const char* remote :
       {"0.0.0.0:7543", "[::]:7543", "10.231.1.2:7543", "localhost:7543", "partner.example:7543",
        "128.0.0.1:1", "7543", "[::ffff:127.0.0.1]:1"}) {
    EXPECT_FALSE(IsLoopbackListenAddress(remote)) << remote;
  }
}

class TlsKeyLoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("tls-keylog");
    ASSERT_FALSE(dir_.empty());
    const std::string script = testing::Env("FEDFACE_SOURCE_DIR") + "/scripts/make_certs.sh";
    const std::string cmd = "bash '" + script + "' '" + dir_ + "' --dev acme > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

  // Starts a mutual-TLS server logging to `server_log` and connects a client logging to
  // `client_log` ("" = off). True when the handshake completed.
  bool Handshake(const std::string& server_log, const std::string& client_log) {
    absl::StatusOr<TlsMaterial> server =
        LoadTlsMaterial({dir_ + "/ca.crt", dir_ + "/registry.crt", dir_ + "/registry.key"});
    absl::StatusOr<TlsMaterial> client = LoadTlsMaterial(
        {dir_ + "/ca.crt", dir_ + "/partners/acme/client.crt", dir_ + "/partners/acme/client.key"});
    EXPECT_TRUE(server.ok() && client.ok());
    absl::StatusOr<TlsEndpointOptions> server_options = TlsEndpointOptionsFor(server_log);
    absl::StatusOr<TlsEndpointOptions> client_options = TlsEndpointOptionsFor(client_log);
    EXPECT_TRUE(server_options.ok() && client_options.ok());
    int port = 0;
    grpc::ServerBuilder builder;
    // A server needs a service; this one answers UNIMPLEMENTED (the test only shakes hands).
    grpc::CallbackGenericService generic;
    builder.RegisterCallbackGenericService(&generic);
    builder.AddListeningPort("127.0.0.1:0", MutualTlsServerCredentials(*server, *server_options),
                             &port);
    std::unique_ptr<grpc::Server> listener = builder.BuildAndStart();
    if (listener == nullptr || port == 0) {
      ADD_FAILURE() << "the mutual-TLS server did not start";
      return false;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                  MutualTlsChannelCredentials(*client, *client_options), args);
    const bool connected =
        channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::minutes(2));
    channel.reset();
    listener->Shutdown();
    return connected;
  }

  std::string dir_;
};

TEST_F(TlsKeyLoggingTest, BothEndsLogTheTls13SecretsOfARealMutualTlsHandshake) {
  const std::string server_log = dir_ + "/server-keys.log";
  const std::string client_log = dir_ + "/client-keys.log";
  ASSERT_TRUE(Handshake(server_log, client_log));
  for (const std::string& path : {server_log, client_log}) {
    const std::string text = WaitForLines(path, 4);
    EXPECT_EQ(text.find('\r'), std::string::npos) << path;
    EXPECT_EQ(ModeOf(path), 0600u) << path;
    absl::StatusOr<partner::audit::TlsKeyLog> log = partner::audit::TlsKeyLog::Load({path});
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ(log->sessions(), 1u) << text;
    for (const char* label : {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                              "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"}) {
      EXPECT_TRUE(absl::StrContains(text, label)) << path << " lacks " << label << ":\n" << text;
    }
  }
  // A second server on the same key log (a restart, in gRPC's eyes a new "w+" open) keeps the
  // first session's secrets: the key log grows.
  const size_t before = testing::ReadText(server_log).size();
  ASSERT_TRUE(Handshake(server_log, ""));
  const std::string after = WaitForLines(server_log, 8);
  EXPECT_GT(after.size(), before);
  absl::StatusOr<partner::audit::TlsKeyLog> both = partner::audit::TlsKeyLog::Load({server_log});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->sessions(), 2u) << after;
}

TEST_F(TlsKeyLoggingTest, NoKeyLogUnlessAsked) {
  ASSERT_TRUE(Handshake("", ""));
  absl::StatusOr<TlsEndpointOptions> none = TlsEndpointOptionsFor("");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->key_log_path, "");
}

}  // namespace
}  // namespace fedface
