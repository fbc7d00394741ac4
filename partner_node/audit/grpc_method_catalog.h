// The gRPC methods the audit knows: for each path ("/fedface.v1.ModelRegistry/ListModels") the
// protobuf types of its request and response messages, taken from the compiled protos linked into
// this binary (the generated descriptor pool), optionally extended with a FileDescriptorSet file
// (`protoc --include_imports --descriptor_set_out=FILE`), e.g. to audit a newer protocol.
//
// CheckMessage is the audit's type check: the bytes must parse as the method's type AND carry no
// unknown fields at any depth (an unknown field would be an unaudited channel out).
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedface::partner::audit {

struct GrpcMethod {
  std::string path;  // "/<package>.<Service>/<Method>"
  const google::protobuf::Descriptor* request = nullptr;
  const google::protobuf::Descriptor* response = nullptr;
  bool client_streaming = false;
  bool server_streaming = false;
};

class GrpcMethodCatalog {
 public:
  // The packages whose services the partner speaks.
  static std::vector<std::string> DefaultPackages() { return {"fedface.v1"}; }

  // Every service in `packages` (exact package names) whose .proto is linked into this binary.
  // An empty catalog is not an error (the caller reports it).
  static std::unique_ptr<GrpcMethodCatalog> FromLinkedProtos(
      const std::vector<std::string>& packages);

  GrpcMethodCatalog(const GrpcMethodCatalog&) = delete;
  GrpcMethodCatalog& operator=(const GrpcMethodCatalog&) = delete;

  // Adds the services of `packages` found in a serialized FileDescriptorSet; a method already
  // known is replaced (the file given explicitly wins). Fails naming the file when it cannot be
  // read, parsed, or its files do not build (missing imports: use --include_imports).
  absl::Status AddDescriptorSet(const std::string& path, const std::vector<std::string>& packages);

  // nullptr when the path is unknown.
  const GrpcMethod* Find(std::string_view path) const;
  const std::map<std::string, GrpcMethod, std::less<>>& methods() const { return methods_; }

  // OK when `bytes` parse as `type` with no unknown field anywhere; otherwise InvalidArgument
  // saying what failed ("does not parse as fedface.v1.X" or "unknown field 17 in .items[2]").
  // Not thread-safe (shares a dynamic message factory).
  absl::Status CheckMessage(const google::protobuf::Descriptor* type, std::string_view bytes);

 private:
  GrpcMethodCatalog() = default;
  void AddServices(const google::protobuf::FileDescriptor* file,
                   const std::vector<std::string>& packages);

  std::map<std::string, GrpcMethod, std::less<>> methods_;
  std::vector<std::unique_ptr<google::protobuf::SimpleDescriptorDatabase>> extra_databases_;
  std::vector<std::unique_ptr<google::protobuf::DescriptorPool>> extra_pools_;
  google::protobuf::DynamicMessageFactory dynamic_factory_;
};

}  // namespace fedface::partner::audit
