#include "tests/support/raw_http2.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace fedface::testing {
namespace {

constexpr uint8_t kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kPing = 0x6, kGoAway = 0x7;
constexpr uint8_t kAck = 0x1, kEndHeaders = 0x4;
constexpr uint32_t kCancel = 0x8;

void Frame(std::string& out, uint8_t type, uint8_t flags, uint32_t stream,
           const std::string& payload) {
  const uint32_t n = static_cast<uint32_t>(payload.size());
  const char header[9] = {static_cast<char>(n >> 16),
                          static_cast<char>(n >> 8),
                          static_cast<char>(n),
                          static_cast<char>(type),
                          static_cast<char>(flags),
                          static_cast<char>(stream >> 24 & 0x7f),
                          static_cast<char>(stream >> 16),
                          static_cast<char>(stream >> 8),
                          static_cast<char>(stream)};
  out.append(header, 9);
  out += payload;
}

// HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2), lengths < 127.
void Literal(std::string& out, const std::string& name, const std::string& value) {
  out.push_back('\0');
  out.push_back(static_cast<char>(name.size()));
  out += name;
  out.push_back(static_cast<char>(value.size()));
  out += value;
}

}  // namespace

RapidResetResult SendRapidResets(int port, const std::string& path, int64_t pairs) {
  RapidResetResult result;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    result.error = std::string("socket: ") + std::strerror(errno);
    return result;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 &&
      errno != EINPROGRESS) {
    result.error = std::string("connect: ") + std::strerror(errno);
    close(fd);
    return result;
  }
  std::string header_block;
  Literal(header_block, ":method", "POST");
  Literal(header_block, ":scheme", "http");
  Literal(header_block, ":path", path);
  Literal(header_block, ":authority", "localhost");
  Literal(header_block, "content-type", "application/grpc");
  Literal(header_block, "te", "trailers");
  const std::string cancel = {0, 0, 0, static_cast<char>(kCancel)};

  std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Frame(out, kSettings, 0, 0, "");
  std::string in;
  size_t out_at = 0;
  int64_t queued = 0;   // pairs appended to `out`
  int64_t written = 0;  // bytes written in all
  uint32_t stream = 1;
  int64_t consumed = 0;                            // bytes of `out` already dropped from the front
  std::vector<std::pair<int64_t, int64_t>> marks;  // (end offset, pairs) per batch
  char buffer[1 << 16];
  while (true) {
    // Keep about 1,000 pairs queued.
    if (queued < pairs && out.size() - out_at < (1 << 16)) {
      const int64_t n = std::min<int64_t>(1000, pairs - queued);
      for (int64_t i = 0; i < n; ++i, stream += 2) {
        Frame(out, kHeaders, kEndHeaders, stream, header_block);
        Frame(out, kRstStream, 0, stream, cancel);
      }
      queued += n;
      marks.emplace_back(consumed + static_cast<int64_t>(out.size()), queued);
    }
    while (!marks.empty() && marks.front().first <= written) {
      result.pairs_sent = marks.front().second;
      marks.erase(marks.begin());
    }
    if (result.pairs_sent >= pairs || result.closed_by_server) break;
    pollfd p{fd, static_cast<short>(POLLIN | (out_at < out.size() ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 60'000) <= 0) {
      result.error = "no progress for 60 s";
      break;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t got = read(fd, buffer, sizeof(buffer));
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        result.closed_by_server = true;
        break;
      }
      if (got > 0) {
        result.bytes_received += got;
        in.append(buffer, static_cast<size_t>(got));
        // Whole frames: answer SETTINGS and PING, stop at GOAWAY.
        size_t at = 0;
        while (in.size() - at >= 9) {
          const auto* h = reinterpret_cast<const unsigned char*>(in.data() + at);
          const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
          if (in.size() - at < 9 + length) break;
          const uint8_t type = h[3], flags = h[4];
          if (type == kSettings && !(flags & kAck)) Frame(out, kSettings, kAck, 0, "");
          if (type == kPing && !(flags & kAck)) Frame(out, kPing, kAck, 0, in.substr(at + 9, 8));
          if (type == kGoAway) result.closed_by_server = true;
          at += 9 + length;
        }
        in.erase(0, at);
      }
    }
    if (out_at < out.size() && (p.revents & POLLOUT)) {
      const ssize_t put = send(fd, out.data() + out_at, out.size() - out_at, MSG_NOSIGNAL);
      if (put < 0 && errno != EAGAIN && errno != EINTR) {
        if (errno == EPIPE || errno == ECONNRESET) {
          result.closed_by_server = true;
        } else {
          result.error = std::string("write: ") + std::strerror(errno);
        }
        break;
      }
      if (put > 0) {
        out_at += static_cast<size_t>(put);
        written += put;
      }
    }
    if (out_at > (1 << 20)) {  // drop what was written
      out.erase(0, out_at);
      consumed += static_cast<int64_t>(out_at);
      out_at = 0;
    }
  }
  close(fd);
  return result;
}

std::vector<int> IdleConnections(int port, int count) {
  std::vector<int> sockets;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < count; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      close(fd);
      break;
    }
    sockets.push_back(fd);
  }
  return sockets;
}

int Occurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace fedface::testing
