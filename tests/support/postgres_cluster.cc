#include "tests/support/postgres_cluster.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/common/status_macros.h"
#include "tests/support/child_process.h"

namespace fedface::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kSuperuser[] = "fedface";

// setpriv in front of a command when running as root: PostgreSQL refuses root.
std::vector<std::string> AsServerUser(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  std::vector<std::string> wrapped = {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres",
                                      "--init-groups", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

absl::Status Run(const std::vector<std::string>& argv, const std::string& what) {
  ProcessResult r = RunProcess(argv, "", absl::Minutes(5));
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("postgres test cluster: ", what, " failed (exit ",
                                          r.exit_code, "): ", r.err, r.out));
}

}  // namespace

std::string PostgresCluster::BinDir() {
  for (const char* major : {"17", "16", "15"}) {
    const std::string dir = absl::StrCat("/usr/lib/postgresql/", major, "/bin");
    std::error_code ec;
    if (fs::exists(dir + "/initdb", ec) && fs::exists(dir + "/pg_ctl", ec)) return dir;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<PostgresCluster>> PostgresCluster::Start() {
  const std::string bin = BinDir();
  if (bin.empty()) return absl::NotFoundError("PostgreSQL server binaries (initdb) not found");
  // Under /tmp and short: a unix socket path has at most 107 bytes.
  std::string templ = "/tmp/fedface-pg-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  std::unique_ptr<PostgresCluster> cluster(new PostgresCluster(templ));
  const std::string& dir = cluster->dir_;
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "running as root and there is no `postgres` user to run the server as (Debian's "
          "postgresql package creates it)");
    }
    if (chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return absl::InternalError("cannot chown the cluster folder to postgres");
    }
  }
  const std::string data = dir + "/data";
  RETURN_IF_ERROR(Run(AsServerUser({bin + "/initdb", "-D", data, "-U", kSuperuser, "--auth=trust",
                                    "--encoding=UTF8", "--locale=C", "-N"}),
                      "initdb"));
  // No TCP port at all; the socket lives in the cluster's own folder.
  const std::string settings = absl::StrCat(
      "\nlisten_addresses = ''\nunix_socket_directories = '", dir,
      "'\nmax_connections = 40\nshared_buffers = 32MB\nfsync = on\nsynchronous_commit = on\n");
  {
    std::string conf = ReadText(data + "/postgresql.conf");
    WriteText(data + "/postgresql.conf", conf + settings);
  }
  if (absl::Status s = Run(AsServerUser({bin + "/pg_ctl", "-D", data, "-l", dir + "/server.log",
                                         "-w", "-t", "120", "start"}),
                           "pg_ctl start");
      !s.ok()) {
    return absl::InternalError(
        absl::StrCat(s.message(), "; server log: ", ReadText(dir + "/server.log")));
  }
  cluster->running_ = true;
  cluster->StartWatchdog();
  return cluster;
}

absl::StatusOr<PostgresCluster*> PostgresCluster::Shared() {
  static absl::StatusOr<std::unique_ptr<PostgresCluster>>* shared =
      new absl::StatusOr<std::unique_ptr<PostgresCluster>>(Start());
  if (!shared->ok()) return shared->status();
  return shared->value().get();
}

void PostgresCluster::StartWatchdog() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  const std::string prefix =
      geteuid() == 0 ? "/usr/bin/setpriv --reuid=postgres --regid=postgres --init-groups -- " : "";
  // Blocks in `read` until every write end is closed: by the destructor, or by the kernel when
  // the test process dies.
  const std::string script =
      absl::StrCat("read _ignored; ", prefix, BinDir(), "/pg_ctl -D '", dir_,
                   "/data' -m immediate -w stop >/dev/null 2>&1; ", "rm -rf '", dir_, "'");
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[0], STDIN_FILENO);
    setsid();  // not killed with the test's process group
    execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  if (pid < 0) {
    close(fds[1]);
    return;
  }
  watchdog_pipe_ = fds[1];
  watchdog_pid_ = pid;
}

absl::Status PostgresCluster::Restart() const {
  return Run(AsServerUser({BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log",
                           "-m", "immediate", "-w", "-t", "120", "restart"}),
             "pg_ctl restart");
}

absl::Status PostgresCluster::StopServer() const {
  return Run(AsServerUser({BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w",
                           "-t", "120", "stop"}),
             "pg_ctl stop");
}

absl::Status PostgresCluster::StartServer() const {
  return Run(AsServerUser({BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log",
                           "-w", "-t", "120", "start"}),
             "pg_ctl start");
}

void PostgresCluster::Stop() {
  if (!running_) return;
  running_ = false;
  if (watchdog_pid_ > 0) {
    close(watchdog_pipe_);
    int status = 0;
    waitpid(watchdog_pid_, &status, 0);
    watchdog_pid_ = -1;
    return;
  }
  (void)Run(
      AsServerUser({BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w", "stop"}),
      "pg_ctl stop");
}

PostgresCluster::~PostgresCluster() {
  Stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string PostgresCluster::Conninfo(const std::string& dbname, const std::string& user) const {
  return absl::StrCat("host=", dir_, " dbname=", dbname, " user=", user);
}

absl::StatusOr<std::string> PostgresCluster::Psql(const std::string& dbname, const std::string& sql,
                                                  const std::string& user) const {
  ProcessResult r = RunProcess({BinDir() + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                "-h", dir_, "-U", user, "-d", dbname, "-c", sql},
                               "", absl::Minutes(2));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("psql '", sql, "' failed: ", r.err));
  }
  return std::string(absl::StripTrailingAsciiWhitespace(r.out));
}

absl::Status PostgresCluster::CreateDatabase(const std::string& name) const {
  return Psql("postgres", absl::StrCat("CREATE DATABASE \"", name, "\"")).status();
}

}  // namespace fedface::testing
