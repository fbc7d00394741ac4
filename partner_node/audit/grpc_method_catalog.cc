#include "partner_node/audit/grpc_method_catalog.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/unknown_field_set.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"

namespace fedface::partner::audit {
namespace {

namespace pb = google::protobuf;

bool InPackages(const pb::FileDescriptor* file, const std::vector<std::string>& packages) {
  return std::find(packages.begin(), packages.end(), file->package()) != packages.end();
}

// The first unknown field inside `m`, as "unknown field N in <where>", or "".
std::string FindUnknownField(const pb::Message& m, const std::string& where) {
  const pb::Reflection* r = m.GetReflection();
  const pb::UnknownFieldSet& unknown = r->GetUnknownFields(m);
  if (!unknown.empty()) {
    return absl::StrCat("unknown field ", unknown.field(0).number(), " in ",
                        where.empty() ? m.GetDescriptor()->full_name() : where);
  }
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        std::string found = FindUnknownField(r->GetRepeatedMessage(m, f, i),
                                             absl::StrCat(where, ".", f->name(), "[", i, "]"));
        if (!found.empty()) return found;
      }
    } else {
      std::string found =
          FindUnknownField(r->GetMessage(m, f), absl::StrCat(where, ".", f->name()));
      if (!found.empty()) return found;
    }
  }
  return "";
}

}  // namespace

std::unique_ptr<GrpcMethodCatalog> GrpcMethodCatalog::FromLinkedProtos(
    const std::vector<std::string>& packages) {
  std::unique_ptr<GrpcMethodCatalog> catalog(new GrpcMethodCatalog());
  std::vector<std::string> files;
  pb::DescriptorPool::internal_generated_database()->FindAllFileNames(&files);
  for (const std::string& name : files) {
    const pb::FileDescriptor* file = pb::DescriptorPool::generated_pool()->FindFileByName(name);
    if (file && InPackages(file, packages)) catalog->AddServices(file, packages);
  }
  return catalog;
}

void GrpcMethodCatalog::AddServices(const pb::FileDescriptor* file,
                                    const std::vector<std::string>& packages) {
  if (!InPackages(file, packages)) return;
  for (int s = 0; s < file->service_count(); ++s) {
    const pb::ServiceDescriptor* service = file->service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      const pb::MethodDescriptor* method = service->method(m);
      GrpcMethod g;
      g.path = absl::StrCat("/", service->full_name(), "/", method->name());
      g.request = method->input_type();
      g.response = method->output_type();
      g.client_streaming = method->client_streaming();
      g.server_streaming = method->server_streaming();
      methods_[g.path] = g;
    }
  }
}

absl::Status GrpcMethodCatalog::AddDescriptorSet(const std::string& path,
                                                 const std::vector<std::string>& packages) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, uint64_t{64} << 20));
  pb::FileDescriptorSet set;
  if (!set.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a protobuf FileDescriptorSet"));
  }
  auto db = std::make_unique<pb::SimpleDescriptorDatabase>();
  for (const pb::FileDescriptorProto& file : set.file()) {
    if (!db->Add(file)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": file ", file.name(), " is defined twice"));
    }
  }
  auto pool = std::make_unique<pb::DescriptorPool>(db.get());
  for (const pb::FileDescriptorProto& proto : set.file()) {
    const pb::FileDescriptor* file = pool->FindFileByName(proto.name());
    if (!file) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": ", proto.name(), " does not build (missing imports? use --include_imports)"));
    }
    AddServices(file, packages);
  }
  extra_databases_.push_back(std::move(db));
  extra_pools_.push_back(std::move(pool));
  return absl::OkStatus();
}

const GrpcMethod* GrpcMethodCatalog::Find(std::string_view path) const {
  auto it = methods_.find(path);
  return it == methods_.end() ? nullptr : &it->second;
}

absl::Status GrpcMethodCatalog::CheckMessage(const pb::Descriptor* type, std::string_view bytes) {
  const pb::Message* prototype = nullptr;
  if (type->file()->pool() == pb::DescriptorPool::generated_pool()) {
    prototype = pb::MessageFactory::generated_factory()->GetPrototype(type);
  }
  if (!prototype) prototype = dynamic_factory_.GetPrototype(type);
  if (!prototype) {
    return absl::InternalError(absl::StrCat("no message factory for ", type->full_name()));
  }
  std::unique_ptr<pb::Message> message(prototype->New());
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat(bytes.size(), " bytes do not parse as ", type->full_name()));
  }
  std::string unknown = FindUnknownField(*message, "");
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("parses as ", type->full_name(), " but carries an ", unknown));
  }
  return absl::OkStatus();
}

}  // namespace fedface::partner::audit
