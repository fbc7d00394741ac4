// The local match API (proto/fedface/v1/local_match.proto) over the partner's gallery: Enroll,
// Verify, Identify and DeleteSubject for the partner's own applications. Register it ONLY on the
// local listener (StartLocalApiListener); the vendor-facing server must never carry it.
//
// What it guarantees:
//   - every request is checked before any work: subject names (ValidateSubjectName), image size
//     (limits.max_image_bytes, RESOURCE_EXHAUSTED), top_k (1..limits.max_top_k); a corrupt image
//     or one without a face is INVALID_ARGUMENT, an unknown subject NOT_FOUND; errors never echo
//     the subject name or image bytes;
//   - every request has a cost bound: images above limits.max_pixels are refused from their
//     header (RESOURCE_EXHAUSTED); at most limits.max_concurrent_requests requests work at once
//     and limits.max_queued_requests wait (RequestQueue), others get RESOURCE_EXHAUSTED; the
//     checks above run first, so a bad request gets its own error even when the API is busy;
//     a request whose caller cancelled or whose deadline passed stops before the next stage;
//   - the largest face of an image is used (enrolment and probes alike);
//   - writes go through the GalleryWriter, so the store and the FAISS index stay equal;
//   - only embeddings of `model_version` are compared; Identify is exact below
//     gallery.exact_search_below faces and finds brute force's nearest with recall >= 0.99 above
//     (FaceIndex::Search), with exact distances either way; its search uses one core.
//
// Threads: gRPC's callback API calls the methods, which only check the request and queue it; the
// work runs on the RequestQueue's limits.max_concurrent_requests threads and borrows the
// engine's workers, so at most engine.workers() images are analysed at once and at most
// limits.max_concurrent_requests decoded at once. A waiting call holds no thread.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/engine/face_engine.h"
#include "fedface/v1/local_match.grpc.pb.h"
#include "partner_node/enroll/gallery_writer.h"
#include "partner_node/local_api/request_queue.h"

namespace fedface::partner {

struct LocalMatchLimits {
  int64_t max_image_bytes = int64_t{16} << 20;  // 16 MiB
  int max_top_k = 100;                          // 1 .. 10000 (FaceIndex's bound)
  // Refused from the image header before decoding: at most 3 bytes per pixel decoded (48 MB).
  int64_t max_pixels = 16'000'000;
  int max_concurrent_requests = 4;  // requests decoding or analysing at once
  int max_queued_requests = 32;     // more wait for a slot; beyond, RESOURCE_EXHAUSTED
};

struct LocalMatchOptions {
  std::string model_version;  // the version the engine embeds with and the index holds
  float threshold = 0.6f;     // a comparison matches when distance <= threshold
  LocalMatchLimits limits;
  bool log_requests = false;  // one line per request on stderr: method, status code, time
};

class LocalMatchService final : public fedface::v1::LocalMatch::CallbackService {
 public:
  // REQUIRES: `engine` embeds (has a network) for options.model_version; writer.index() is set and
  // holds options.model_version; threshold finite and > 0; limits in range. Fails with
  // InvalidArgument otherwise. `engine` and `writer` must outlive the service.
  static absl::StatusOr<std::unique_ptr<LocalMatchService>> Create(FaceEngine& engine,
                                                                   GalleryWriter& writer,
                                                                   LocalMatchOptions options);

  // The largest gRPC message the listener must accept: an image at the limit plus the other
  // fields (StartLocalApiListener sets it).
  int MaxReceiveMessageBytes() const;
  const LocalMatchOptions& options() const { return options_; }

  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* context,
                                   const fedface::v1::LocalEnrollRequest* request,
                                   fedface::v1::LocalEnrollResponse* response) override;
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* context,
                                   const fedface::v1::LocalVerifyRequest* request,
                                   fedface::v1::LocalVerifyResponse* response) override;
  grpc::ServerUnaryReactor* Identify(grpc::CallbackServerContext* context,
                                     const fedface::v1::LocalIdentifyRequest* request,
                                     fedface::v1::LocalIdentifyResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSubject(
      grpc::CallbackServerContext* context, const fedface::v1::LocalDeleteSubjectRequest* request,
      fedface::v1::LocalDeleteSubjectResponse* response) override;

 private:
  struct Probe;
  LocalMatchService(FaceEngine& engine, GalleryWriter& writer, LocalMatchOptions options)
      : engine_(engine),
        writer_(writer),
        options_(std::move(options)),
        queue_(options_.limits.max_concurrent_requests, options_.limits.max_queued_requests) {}
  // The checks an image passes before it is queued: not empty, limits.max_image_bytes, and
  // limits.max_pixels from its header.
  absl::Status CheckImage(const std::string& image) const;
  // Decode, detect, embed the largest face (on a queue worker, after CheckImage).
  absl::StatusOr<Probe> Analyze(const std::string& image, bool count_all_faces);
  // Answers `checked` at once when it is an error; otherwise queues `work` (or answers busy),
  // which runs unless the caller left while it waited.
  grpc::ServerUnaryReactor* Serve(const char* method, grpc::CallbackServerContext* context,
                                  const absl::Status& checked, std::function<absl::Status()> work);
  void Finish(const char* method, grpc::CallbackServerContext* context, absl::Time start,
              const absl::Status& status, grpc::ServerUnaryReactor* reactor);

  FaceEngine& engine_;
  GalleryWriter& writer_;
  const LocalMatchOptions options_;
  RequestQueue queue_;  // last: its destructor runs what it accepted while the rest is alive
};

}  // namespace fedface::partner
