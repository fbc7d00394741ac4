// A second, independent decoder for the audit tests: Debian's tshark (Wireshark's dissectors)
// reads a capture with the partner's TLS key log and the project's .proto files, and lists the
// gRPC messages it decoded, so that a test can compare them with what the traffic audit saw.
//
// Thread safety: free functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedface::audit_test {

struct TsharkMessage {
  int src_port = 0;
  int dst_port = 0;
  std::string type;  // full protobuf name as tshark resolved it ("" when it did not)
  uint64_t length = 0;
  std::string sha256;  // hex, of the message bytes (without the 5-byte gRPC prefix)
  std::string data;    // the message bytes
  // Every protobuf field tshark decoded by name (nested ones included; a repeated name keeps
  // its last value): name -> tshark's value text, the wire bytes as colon hex ("02",
  // "00:00:00:00:00:00:e4:3f").
  std::map<std::string, std::string> fields;
};

// The tshark binary on PATH, or "".
std::string TsharkBinary();

// The gRPC messages tshark decodes in `pcap`, in capture order, decrypting TLS with `key_log`
// ("" for none; a copy with '\n' line ends is written into `work_dir` first, tshark reading only
// the first line of gRPC's '\r'-separated files). Fails with tshark's words when it cannot run.
absl::StatusOr<std::vector<TsharkMessage>> TsharkGrpcMessages(const std::string& pcap,
                                                              const std::string& key_log,
                                                              const std::string& work_dir);

}  // namespace fedface::audit_test
