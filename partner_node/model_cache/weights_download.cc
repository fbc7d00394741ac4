#include "partner_node/model_cache/weights_download.h"

#include <fcntl.h>
#include <grpcpp/client_context.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::partner {
namespace {

constexpr uint64_t kSyncEveryBytes = uint64_t{8} << 20;

class PartialFile {
 public:
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Opens (creating) the file; returns its size, truncating it to 0 when above `max_bytes`.
  absl::StatusOr<uint64_t> Open(const std::string& path, uint64_t max_bytes) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Error("cannot open");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Error("cannot stat");
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > max_bytes) {
      if (::ftruncate(fd_, 0) != 0) return Error("cannot truncate");
      size = 0;
    }
    return size;
  }
  absl::Status Append(uint64_t offset, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error("write failed");
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }
  absl::Status Sync() { return ::fsync(fd_) == 0 ? absl::OkStatus() : Error("fsync failed"); }

 private:
  absl::Status Error(const char* what) {
    return absl::UnavailableError(absl::StrCat(path_, ": ", what, ": ", std::strerror(errno)));
  }
  std::string path_;
  int fd_ = -1;
};

}  // namespace

absl::StatusOr<WeightsDownload> DownloadWeightsResumably(
    fedface::v1::ModelRegistry::StubInterface& stub, const std::string& version,
    uint64_t expected_bytes, const std::string& partial_path, absl::Duration deadline,
    std::ostream* progress) {
  PartialFile file;
  ASSIGN_OR_RETURN(uint64_t held, file.Open(partial_path, expected_bytes));
  WeightsDownload result;
  result.resumed_from = held;
  if (held == expected_bytes) return result;  // complete already; the caller verifies it
  if (progress) {
    *progress << "downloading " << expected_bytes - held << " of " << expected_bytes
              << " weight bytes of " << version;
    if (held > 0) *progress << " (resuming at byte " << held << ")";
    *progress << std::endl;
  }

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
  fedface::v1::DownloadWeightsRequest request;
  request.set_version(version);
  request.set_start_offset(held);
  std::unique_ptr<grpc::ClientReaderInterface<fedface::v1::WeightsChunk>> reader =
      stub.DownloadWeights(&context, request);
  uint64_t offset = held;
  uint64_t unsynced = 0;
  fedface::v1::WeightsChunk chunk;
  absl::Status violation;
  while (reader->Read(&chunk)) {
    const uint64_t size = chunk.data().size();
    if (chunk.offset() != offset) {
      violation = absl::DataLossError(
          absl::StrCat("vendor sent a chunk at offset ", chunk.offset(), ", expected ", offset));
    } else if (size == 0 || size > kMaxWeightsChunkBytes) {
      violation = absl::DataLossError(absl::StrCat(
          "vendor sent a chunk of ", size, " bytes (allowed 1..", kMaxWeightsChunkBytes, ")"));
    } else if (size > expected_bytes - offset) {
      violation = absl::OutOfRangeError(absl::StrCat(
          "vendor sent bytes beyond the ", expected_bytes,
          " that the signed manifest declares (chunk at ", offset, " of ", size, " bytes)"));
    }
    if (!violation.ok()) {
      context.TryCancel();
      break;
    }
    if (absl::Status s = file.Append(offset, chunk.data()); !s.ok()) {
      context.TryCancel();
      violation = s;
      break;
    }
    offset += size;
    result.received += size;
    unsynced += size;
    if (unsynced >= kSyncEveryBytes) {
      if (absl::Status s = file.Sync(); !s.ok()) {
        context.TryCancel();
        violation = s;
        break;
      }
      unsynced = 0;
    }
  }
  const grpc::Status status = reader->Finish();
  // Keep what was accepted, whatever happened next: the next pull resumes from it.
  if (absl::Status s = file.Sync(); !s.ok() && violation.ok()) violation = s;
  if (!violation.ok()) return violation;
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("download interrupted at byte ", offset, " of ",
                                     expected_bytes, ": ", status.error_message()));
  }
  if (offset != expected_bytes) {
    return absl::DataLossError(absl::StrCat("the vendor's stream ended at byte ", offset, " of ",
                                            expected_bytes, " declared by the signed manifest"));
  }
  return result;
}

}  // namespace fedface::partner
