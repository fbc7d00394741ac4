// A deliberately hostile HTTP/2 client over plaintext TCP, written from RFC 9113 frame by frame
// (no HTTP/2 library: it must send what a well-behaved one never would).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fedface::testing {

struct RapidResetResult {
  int64_t pairs_sent = 0;         // HEADERS+RST_STREAM pairs fully written
  int64_t bytes_received = 0;     // from the server, read and discarded
  bool closed_by_server = false;  // the server closed (or sent GOAWAY on) the connection
  std::string error;              // non-empty when the client itself failed (connect, write)
};

// CVE-2023-44487 ("rapid reset"): on ONE connection to 127.0.0.1:port, opens `pairs` streams
// with a HEADERS frame (POST `path`, HPACK literals, no END_STREAM) each immediately cancelled
// with RST_STREAM(CANCEL). Answers the server's SETTINGS and PINGs, reads everything it sends,
// and stops early when the server closes the connection or sends GOAWAY.
RapidResetResult SendRapidResets(int port, const std::string& path, int64_t pairs);

// Opens up to `count` idle TCP connections to 127.0.0.1:port (never sends a byte): a descriptor
// flood. Stops at the first that fails; the caller closes them.
std::vector<int> IdleConnections(int port, int count);

// How many times `needle` occurs in `text` (overlapping), e.g. a line in a child's log.
int Occurrences(const std::string& text, const std::string& needle);

}  // namespace fedface::testing
