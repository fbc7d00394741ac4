#include "core/package/durable_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"

namespace fedface::package_internal {
namespace {

absl::Status ErrnoError(const std::string& path, const char* what, int err) {
  return absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(err)));
}

}  // namespace

absl::Status WriteFileDurably(const std::string& path, std::string_view data, mode_t mode,
                              bool overwrite) {
  std::string tmp = path + ".tmp-XXXXXX";
  // mkstemp creates the file 0600, so a secret is never readable by others, even briefly.
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return ErrnoError(path, "cannot create a temporary file", errno);
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoError(path, what, err);
  };
  if (::fchmod(fd, mode) != 0) return fail("cannot set the file mode");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write failed");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync failed");
  ::close(fd);
  if (overwrite) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoError(path, "rename failed", err);
    }
  } else {
    // link() refuses an existing target atomically, unlike rename().
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      if (err == EEXIST) {
        return absl::AlreadyExistsError(absl::StrCat(path, ": already exists; not overwriting"));
      }
      return ErrnoError(path, "cannot create", err);
    }
    ::unlink(tmp.c_str());
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  return SyncDirectory(dir.empty() ? "." : dir);
}

}  // namespace fedface::package_internal
