#include "tests/audit/harness/probe_partner.h"

#include <fcntl.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace fedface::audit_test {

using audittest::ProbeReply;
using audittest::ProbeRequest;

class ProbePartner::Service final : public audittest::AuditProbe::Service {
 public:
  explicit Service(ProbePlan plan) : plan_(std::move(plan)) {}

  grpc::Status Echo(grpc::ServerContext* context, const ProbeRequest* request,
                    ProbeReply* reply) override {
    if (!plan_.padding_metadata.empty()) {
      context->AddInitialMetadata("x-probe-padding", plan_.padding_metadata);
    }
    if (!plan_.error_message.empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, plan_.error_message);
    }
    Fill(*request, 0, reply);
    Record(*reply);
    return grpc::Status::OK;
  }

  grpc::Status Stream(grpc::ServerContext*, const ProbeRequest* request,
                      grpc::ServerWriter<ProbeReply>* writer) override {
    for (uint32_t i = 0; i < request->count(); ++i) {
      ProbeReply reply;
      Fill(*request, static_cast<int>(i), &reply);
      Record(reply);
      if (!writer->Write(reply)) break;
    }
    return grpc::Status::OK;
  }

  std::vector<std::string> Sent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }

 private:
  void Fill(const ProbeRequest& request, int index, ProbeReply* reply) const {
    if (plan_.fill) {
      plan_.fill(request, index, reply);
      return;
    }
    reply->set_sequence(static_cast<uint64_t>(index));
    reply->set_payload(std::string(64, static_cast<char>('a' + index % 26)));
  }
  void Record(const ProbeReply& reply) {
    std::lock_guard<std::mutex> lock(mu_);
    sent_.push_back(reply.SerializeAsString());
  }

  const ProbePlan plan_;
  mutable std::mutex mu_;
  std::vector<std::string> sent_;
};

absl::StatusOr<std::unique_ptr<ProbePartner>> ProbePartner::Start(ProbePlan plan) {
  std::unique_ptr<ProbePartner> p(new ProbePartner());
  p->service_ = std::make_unique<Service>(std::move(plan));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &p->port_);
  builder.RegisterService(p->service_.get());
  p->server_ = builder.BuildAndStart();
  if (!p->server_ || p->port_ == 0) {
    return absl::UnavailableError("the probe partner could not listen on 127.0.0.1");
  }
  return p;
}

ProbePartner::~ProbePartner() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

std::vector<std::string> ProbePartner::SentReplies() const { return service_->Sent(); }

ProbeVendor::ProbeVendor(int port) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  args.SetInt("grpc.max_metadata_size", 1 << 20);  // room for the large-header test
  channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials(), args);
  stub_ = audittest::AuditProbe::NewStub(channel_);
}

grpc::Status ProbeVendor::Echo(const std::string& note, ProbeReply* reply,
                               const std::string& blob) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ProbeRequest request;
  request.set_note(note);
  request.set_blob(blob);
  return stub_->Echo(&context, request, reply);
}

grpc::Status ProbeVendor::Stream(int count, std::vector<ProbeReply>* replies) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ProbeRequest request;
  request.set_count(static_cast<uint32_t>(count));
  auto reader = stub_->Stream(&context, request);
  ProbeReply reply;
  while (reader->Read(&reply)) replies->push_back(reply);
  return reader->Finish();
}

grpc::Status ProbeVendor::CallUnknownMethod(const std::string& path) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::internal::RpcMethod method(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC);
  ProbeRequest request;
  request.set_note("who is there");
  ProbeReply reply;
  return grpc::internal::BlockingUnaryCall(channel_.get(), method, &context, request, &reply);
}

void ProbeVendor::Close() {
  stub_.reset();
  channel_.reset();
}

absl::StatusOr<std::unique_ptr<TcpdumpCapture>> TcpdumpCapture::Start(const std::string& path,
                                                                      const std::string& filter) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  // -U and --immediate-mode: every packet reaches the file at once (SIGINT loses nothing);
  // -Z root: keep the rights to write into the test's directory.
  std::vector<std::string> argv_s = {"tcpdump", "-i", "lo", "-U",    "--immediate-mode",
                                     "-s",      "0",  "-B", "32768", "-Z",
                                     "root",    "-w", path, filter};
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "tcpdump", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return absl::UnavailableError("tcpdump is not installed");
  }
  std::unique_ptr<TcpdumpCapture> capture(new TcpdumpCapture(pid, pipe_fds[0], path));
  // Wait for "listening on lo" (or an error and exit).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{pipe_fds[0], POLLIN, 0};
    if (poll(&pfd, 1, 200) > 0) {
      char buf[512];
      const ssize_t n = read(pipe_fds[0], buf, sizeof(buf));
      if (n <= 0) break;  // tcpdump exited
      capture->output_.append(buf, static_cast<size_t>(n));
      if (capture->output_.find("listening on") != std::string::npos) return capture;
    }
  }
  return absl::UnavailableError(absl::StrCat("tcpdump cannot capture here: ", capture->output_));
}

TcpdumpCapture::~TcpdumpCapture() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

absl::StatusOr<std::string> TcpdumpCapture::Stop() {
  // The file stops growing once tcpdump has written everything the kernel handed it.
  off_t last = -1;
  int stable = 0;
  for (int i = 0; i < 100 && stable < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    struct stat st {};
    const off_t size = stat(path_.c_str(), &st) == 0 ? st.st_size : -1;
    stable = size == last ? stable + 1 : 0;
    last = size;
  }
  kill(pid_, SIGINT);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  char buf[512];
  ssize_t n;
  while ((n = read(stderr_fd_, buf, sizeof(buf))) > 0) output_.append(buf, static_cast<size_t>(n));
  close(stderr_fd_);
  stderr_fd_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("tcpdump failed: ", output_));
  }
  return output_;
}

}  // namespace fedface::audit_test
