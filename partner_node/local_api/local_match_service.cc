#include "partner_node/local_api/local_match_service.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/engine/image_header.h"
#include "partner_node/enroll/subject_name.h"

namespace fedface::partner {
namespace {

// Room for the subject and the protobuf framing beside an image at the limit.
constexpr int kMessageSlackBytes = 64 << 10;
constexpr int kMaxTopKBound = 10000;

// Errors in reading or writing the store are the server's problem, whatever SQLite called them.
absl::Status StoreError(const absl::Status& s) {
  return absl::InternalError(absl::StrCat("gallery store: ", s.message()));
}

}  // namespace

struct LocalMatchService::Probe {
  Embedding embedding{};
  int faces_detected = 0;
};

absl::StatusOr<std::unique_ptr<LocalMatchService>> LocalMatchService::Create(
    FaceEngine& engine, GalleryWriter& writer, LocalMatchOptions options) {
  if (options.model_version.empty()) {
    return absl::InvalidArgumentError("local match API: no model version");
  }
  if (writer.index() == nullptr || writer.index()->model_version() != options.model_version) {
    return absl::InvalidArgumentError(
        absl::StrCat("local match API: the search index must hold model ", options.model_version));
  }
  if (!std::isfinite(options.threshold) || options.threshold <= 0) {
    return absl::InvalidArgumentError("local match API: the threshold must be finite and > 0");
  }
  if (options.limits.max_image_bytes < 1 ||
      options.limits.max_image_bytes > std::numeric_limits<int>::max() - kMessageSlackBytes) {
    return absl::InvalidArgumentError("local match API: max_image_bytes out of range");
  }
  if (options.limits.max_top_k < 1 || options.limits.max_top_k > kMaxTopKBound) {
    return absl::InvalidArgumentError(
        absl::StrCat("local match API: max_top_k must be 1..", kMaxTopKBound));
  }
  if (options.limits.max_pixels < 1 || options.limits.max_concurrent_requests < 1 ||
      options.limits.max_queued_requests < 0) {
    return absl::InvalidArgumentError(
        "local match API: max_pixels and max_concurrent_requests must be >= 1, "
        "max_queued_requests >= 0");
  }
  return std::unique_ptr<LocalMatchService>(
      new LocalMatchService(engine, writer, std::move(options)));
}

int LocalMatchService::MaxReceiveMessageBytes() const {
  return static_cast<int>(options_.limits.max_image_bytes) + kMessageSlackBytes;
}

absl::Status LocalMatchService::CheckImage(const std::string& image) const {
  if (image.empty()) return absl::InvalidArgumentError("image is empty");
  if (static_cast<int64_t>(image.size()) > options_.limits.max_image_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "image is ", image.size(), " bytes, above the limit of ", options_.limits.max_image_bytes));
  }
  // From the header alone: a small file can declare a huge picture (a 116 KB PNG of 40 MP).
  // Unreadable headers are left to the decoder, which names the problem.
  if (absl::StatusOr<ImageDimensions> dims = ReadImageDimensions(image);
      dims.ok() && dims->width * dims->height > options_.limits.max_pixels) {
    return absl::ResourceExhaustedError(
        absl::StrCat(dims->format, " image of ", dims->width, "x", dims->height,
                     " pixels is above the local API's limit of ", options_.limits.max_pixels,
                     " pixels (local_api.max_pixels)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LocalMatchService::Probe> LocalMatchService::Analyze(const std::string& image,
                                                                    bool count_all_faces) {
  ProcessOptions process;
  // Enrolment reports how many faces the image held, so it analyses them all and keeps the
  // largest; a probe needs only the largest.
  process.largest_face_only = !count_all_faces;
  process.embed = true;
  ImageAnalysis analysis = engine_.ProcessBytes(image, process, "image");
  if (!analysis.status.ok()) {
    const absl::StatusCode code = analysis.status.code();
    if (code == absl::StatusCode::kInvalidArgument ||
        code == absl::StatusCode::kResourceExhausted) {
      return analysis.status;
    }
    return absl::InternalError(absl::StrCat("face engine: ", analysis.status.message()));
  }
  if (analysis.faces.empty()) return absl::InvalidArgumentError("no face found in the image");
  if (analysis.embeddings.size() != analysis.faces.size()) {
    return absl::InternalError("face engine returned no embedding for a detected face");
  }
  // The engine's own rule for "largest" (first of equal areas), so an enrolment through the API
  // stores the same face as `partner_node enroll` does for the same file.
  const auto largest = std::max_element(
      analysis.faces.begin(), analysis.faces.end(),
      [](const AnalyzedFace& a, const AnalyzedFace& b) { return a.box.Area() < b.box.Area(); });
  Probe probe;
  probe.embedding = analysis.embeddings[largest - analysis.faces.begin()];
  probe.faces_detected = static_cast<int>(analysis.faces.size());
  return probe;
}

grpc::ServerUnaryReactor* LocalMatchService::Serve(const char* method,
                                                   grpc::CallbackServerContext* context,
                                                   const absl::Status& checked,
                                                   std::function<absl::Status()> work) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!checked.ok()) {
    Finish(method, context, start, checked, reactor);
    return reactor;
  }
  absl::Status queued = queue_.Submit([this, method, context, start, reactor, work] {
    const absl::Status status =
        context->IsCancelled()
            ? absl::CancelledError("the caller left (cancelled or deadline passed) while queued")
            : work();
    Finish(method, context, start, status, reactor);
  });
  if (!queued.ok()) Finish(method, context, start, queued, reactor);
  return reactor;
}

void LocalMatchService::Finish(const char* method, grpc::CallbackServerContext* context,
                               absl::Time start, const absl::Status& status,
                               grpc::ServerUnaryReactor* reactor) {
  if (options_.log_requests) {
    std::cerr << absl::StrFormat("local-api: %s %s %.1f ms peer=%s\n", method,
                                 absl::StatusCodeToString(status.code()),
                                 absl::ToDoubleMilliseconds(absl::Now() - start), context->peer());
  }
  reactor->Finish(status.ok() ? grpc::Status::OK
                              : grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                                             std::string(status.message())));
}

grpc::ServerUnaryReactor* LocalMatchService::Enroll(grpc::CallbackServerContext* context,
                                                    const fedface::v1::LocalEnrollRequest* request,
                                                    fedface::v1::LocalEnrollResponse* response) {
  absl::Status checked = ValidateSubjectName(request->subject());
  if (checked.ok()) checked = CheckImage(request->image());
  return Serve("Enroll", context, checked, [this, context, request, response]() -> absl::Status {
    ASSIGN_OR_RETURN(Probe probe, Analyze(request->image(), /*count_all_faces=*/true));
    if (context->IsCancelled()) return absl::CancelledError("the client cancelled");
    ImageOutcome outcome;
    outcome.subject = request->subject();
    outcome.content_sha256 = Sha256Hex(request->image());
    outcome.model_version = options_.model_version;
    outcome.faces = {probe.embedding};
    absl::StatusOr<GalleryChange> change = writer_.Commit({outcome});
    if (!change.ok()) return StoreError(change.status());
    if (change->added.empty()) return absl::InternalError("gallery store added no embedding");
    response->set_image_id(change->added.front().image_id);
    response->set_faces_detected(probe.faces_detected);
    response->set_faces_enrolled(1);
    response->set_model_version(options_.model_version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* LocalMatchService::Verify(grpc::CallbackServerContext* context,
                                                    const fedface::v1::LocalVerifyRequest* request,
                                                    fedface::v1::LocalVerifyResponse* response) {
  absl::Status checked = ValidateSubjectName(request->subject());
  if (checked.ok()) checked = CheckImage(request->image());
  return Serve("Verify", context, checked, [this, context, request, response]() -> absl::Status {
    absl::StatusOr<std::vector<StoredEmbedding>> enrolled =
        writer_.store().SubjectEmbeddings(request->subject(), options_.model_version);
    if (!enrolled.ok()) return StoreError(enrolled.status());
    if (enrolled->empty()) {
      return absl::NotFoundError(
          absl::StrCat("subject not enrolled for model ", options_.model_version));
    }
    ASSIGN_OR_RETURN(Probe probe, Analyze(request->image(), /*count_all_faces=*/false));
    if (context->IsCancelled()) return absl::CancelledError("the client cancelled");
    float best = std::numeric_limits<float>::infinity();
    for (const StoredEmbedding& e : *enrolled) {
      best = std::min(best, EuclideanDistance(probe.embedding, e.embedding));
    }
    response->set_match(best <= options_.threshold);
    response->set_distance(best);
    response->set_threshold(options_.threshold);
    response->set_compared_faces(static_cast<int32_t>(enrolled->size()));
    response->set_model_version(options_.model_version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* LocalMatchService::Identify(
    grpc::CallbackServerContext* context, const fedface::v1::LocalIdentifyRequest* request,
    fedface::v1::LocalIdentifyResponse* response) {
  absl::Status checked =
      request->top_k() < 1 || request->top_k() > options_.limits.max_top_k
          ? absl::InvalidArgumentError(absl::StrCat("top_k must be 1..", options_.limits.max_top_k))
          : CheckImage(request->image());
  return Serve("Identify", context, checked, [this, context, request, response]() -> absl::Status {
    ASSIGN_OR_RETURN(Probe probe, Analyze(request->image(), /*count_all_faces=*/false));
    if (context->IsCancelled()) return absl::CancelledError("the client cancelled");
    FaceIndex& index = *writer_.index();
    absl::StatusOr<std::vector<FaceCandidate>> found =
        index.Search(probe.embedding, request->top_k());
    if (!found.ok()) return absl::InternalError(absl::StrCat("search: ", found.status().message()));
    for (const FaceCandidate& c : *found) {
      fedface::v1::LocalMatchCandidate* out = response->add_candidates();
      out->set_subject(c.subject);
      out->set_distance(c.distance);
      out->set_match(c.distance <= options_.threshold);
    }
    response->set_threshold(options_.threshold);
    response->set_model_version(options_.model_version);
    response->set_gallery_faces(index.size());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* LocalMatchService::DeleteSubject(
    grpc::CallbackServerContext* context, const fedface::v1::LocalDeleteSubjectRequest* request,
    fedface::v1::LocalDeleteSubjectResponse* response) {
  return Serve(
      "DeleteSubject", context, ValidateSubjectName(request->subject()),
      [this, request, response]() -> absl::Status {
        absl::StatusOr<GalleryChange> change = writer_.DeleteSubject(request->subject());
        if (absl::IsNotFound(change.status())) {
          return absl::NotFoundError("subject not enrolled");
        }
        if (!change.ok()) return StoreError(change.status());
        response->set_removed_faces(static_cast<int64_t>(change->removed_embedding_ids.size()));
        return absl::OkStatus();
      });
}

}  // namespace fedface::partner
