// The byte-pattern search at the heart of the audit: canaries, runs of stored bytes, image
// signatures, found wherever they sit, also across the pieces a stream arrives in.
#include "partner_node/audit/leak_scanner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "absl/strings/escaping.h"

namespace fedface::partner::audit {
namespace {

std::string RandomBytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string LowercaseNoise(std::mt19937& rng, size_t n) {
  std::string s(n, 'a');
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

TEST(LeakScanner, FindsCanarySplitAcrossFeeds) {
  LeakPatterns patterns;
  ASSERT_TRUE(patterns.AddCanary("CANARY-7f3a9c2e1b").ok());
  patterns.Seal();
  const std::string stream = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxCANARY-7f3a9c2e1byyyyyyyy";
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    LeakScanner scanner(&patterns);
    scanner.Feed(1000, std::string_view(stream).substr(0, cut));
    scanner.Feed(1000 + cut, std::string_view(stream).substr(cut));
    scanner.Flush();
    ASSERT_EQ(scanner.findings().size(), 1u) << "cut at " << cut;
    EXPECT_EQ(scanner.findings()[0].offset, 1000 + stream.find("CANARY"));
    EXPECT_EQ(scanner.findings()[0].kind, LeakKind::kCanary);
  }
}

TEST(LeakScanner, DoesNotMatchAcrossADiscontinuity) {
  LeakPatterns patterns;
  ASSERT_TRUE(patterns.AddCanary("CANARY-7f3a9c2e1b").ok());
  patterns.Seal();
  LeakScanner scanner(&patterns);
  scanner.Feed(0, "....CANARY-7f3a");
  scanner.Feed(500, "9c2e1b....");  // bytes 15..499 were never seen
  scanner.Flush();
  EXPECT_TRUE(scanner.findings().empty());
}

TEST(LeakScanner, RejectsCanariesTooShortToBeUnique) {
  LeakPatterns patterns;
  EXPECT_FALSE(patterns.AddCanary("abc").ok());
  EXPECT_TRUE(patterns.AddCanary("abcdefgh").ok());
}

TEST(LeakScanner, FindsEverySixteenByteRunOfStoredBytesAtAnyAlignment) {
  std::mt19937 rng(7);
  const std::string embedding = RandomBytes(rng, 512);
  LeakPatterns patterns;
  ASSERT_TRUE(patterns.AddStoredBytes(embedding, "embedding 1").ok());
  patterns.Seal();
  for (size_t start = 0; start + 16 <= embedding.size(); start += 3) {
    for (size_t lead : {0, 1, 2, 3, 5}) {
      // The bytes around the run differ from the embedding's neighbours, so it is exactly 16.
      std::string before = LowercaseNoise(rng, 40 + lead);
      std::string after = LowercaseNoise(rng, 40);
      if (start > 0) before.back() = static_cast<char>(~embedding[start - 1]);
      if (start + 16 < embedding.size()) after.front() = static_cast<char>(~embedding[start + 16]);
      const std::string traffic = before + embedding.substr(start, 16) + after;
      const auto findings = ScanForLeaks(patterns, traffic);
      ASSERT_EQ(findings.size(), 1u) << "run at " << start << " lead " << lead;
      EXPECT_EQ(findings[0].offset, 40 + lead);
      EXPECT_EQ(findings[0].pattern_offset, start);
      EXPECT_EQ(findings[0].length, 16u);
    }
  }
}

TEST(LeakScanner, IgnoresFifteenByteRuns) {
  std::mt19937 rng(8);
  const std::string embedding = RandomBytes(rng, 512);
  LeakPatterns patterns;
  ASSERT_TRUE(patterns.AddStoredBytes(embedding, "embedding 1").ok());
  patterns.Seal();
  for (size_t start = 0; start + 15 <= embedding.size(); start += 7) {
    const std::string traffic = "zz" + embedding.substr(start, 15) + "zz";
    EXPECT_TRUE(ScanForLeaks(patterns, traffic).empty()) << "run at " << start;
  }
}

TEST(LeakScanner, ReportsAWholeLeakedEmbeddingAsOneRun) {
  std::mt19937 rng(9);
  const std::string embedding = RandomBytes(rng, 512);
  LeakPatterns patterns;
  ASSERT_TRUE(patterns.AddStoredBytes(embedding, "embedding 1").ok());
  ASSERT_TRUE(patterns.AddStoredBytes(RandomBytes(rng, 512), "embedding 2").ok());
  patterns.Seal();
  LeakScanner scanner(&patterns);
  const std::string traffic = "header" + embedding + "trailer";
  for (size_t at = 0; at < traffic.size(); at += 100) {
    scanner.Feed(at, std::string_view(traffic).substr(at, 100));
  }
  scanner.Flush();
  ASSERT_EQ(scanner.findings().size(), 1u);
  EXPECT_EQ(scanner.findings()[0].what, "embedding 1");
  EXPECT_EQ(scanner.findings()[0].offset, 6u);
  EXPECT_GE(scanner.findings()[0].length, 500u);
}

TEST(LeakScanner, DoesNotTreatZeroPaddingAsStoredBytes) {
  std::string stored(64, '\0');
  stored.replace(40, 8, "ABCDEFGH");
  LeakPatterns patterns;
  ASSERT_TRUE(patterns.AddStoredBytes(stored, "mostly zero").ok());
  patterns.Seal();
  EXPECT_TRUE(ScanForLeaks(patterns, std::string(4096, '\0')).empty());
  EXPECT_EQ(ScanForLeaks(patterns, "..." + stored.substr(30, 20) + "...").size(), 1u);
}

TEST(LeakScanner, FindsImageSignatures) {
  LeakPatterns patterns;
  patterns.Seal();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF", 10), "JPEG"},
      {std::string("\x89PNG\r\n\x1A\n\x00\x00", 10), "PNG"},
      {std::string("RIFF\x24\x00\x00\x00WEBPVP8 ", 16), "WebP"},
      {"GIF89a\x01\x00", "GIF"},
      {std::string("II*\x00\x08\x00\x00\x00", 8), "TIFF"},
      {std::string("BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00", 18),
       "BMP"}};
  for (const auto& [header, name] : cases) {
    const auto findings = ScanForLeaks(patterns, "some text before " + header + " and after");
    ASSERT_EQ(findings.size(), 1u) << name;
    EXPECT_EQ(findings[0].what, name);
    EXPECT_EQ(findings[0].offset, 17u) << name;
  }
  EXPECT_TRUE(ScanForLeaks(patterns, "BMW and RIFFS and GIF and PNG and MM*").empty());
}

TEST(LeakScanner, ImageSignaturesCanBeTurnedOff) {
  LeakPatterns patterns;
  patterns.set_image_signatures(false);
  patterns.Seal();
  EXPECT_TRUE(ScanForLeaks(patterns, std::string("\xFF\xD8\xFF\xE0", 4)).empty());
}

// A realistic embedding: 128 float32 around zero, as the face ResNet gives (host order).
std::string Float32Embedding(std::mt19937& rng) {
  std::normal_distribution<float> value(0.0f, 0.09f);
  std::string bytes(128 * 4, '\0');
  for (int i = 0; i < 128; ++i) {
    const float f = value(rng);
    std::memcpy(bytes.data() + 4 * i, &f, 4);
  }
  return bytes;
}

std::vector<float> AsFloats(const std::string& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

// Each way a crafted release could carry an embedding, written here independently of
// embedding_encodings.cc (GCC's _Float16, absl's hex and base64), inside a longer payload.
struct Smuggling {
  const char* form;
  std::function<std::string(const std::string& float32_bytes)> encode;
};

std::vector<Smuggling> SmugglingForms() {
  auto quantize = [](const std::string& e, bool by_max_abs, bool unsigned_bytes) {
    const std::vector<float> v = AsFloats(e);
    float max_abs = 0;
    for (float x : v) max_abs = std::max(max_abs, std::fabs(x));
    std::string out;
    for (float x : v) {
      const double scale = by_max_abs ? 127.0 / max_abs : 127.0;
      const int q = static_cast<int>(std::clamp(std::nearbyint(x * scale), -127.0, 127.0));
      out.push_back(static_cast<char>(unsigned_bytes ? q + 128 : q));
    }
    return out;
  };
  return {
      {"float64",
       [](const std::string& e) {
         std::string out;
         for (float x : AsFloats(e)) {
           const double d = x;
           out.append(reinterpret_cast<const char*>(&d), 8);
         }
         return out;
       }},
      {"float16",
       [](const std::string& e) {
         std::string out;
         for (float x : AsFloats(e)) {
           const _Float16 h = static_cast<_Float16>(x);
           out.append(reinterpret_cast<const char*>(&h), 2);
         }
         return out;
       }},
      {"int8/maxabs", [=](const std::string& e) { return quantize(e, true, false); }},
      {"uint8/maxabs", [=](const std::string& e) { return quantize(e, true, true); }},
      {"int8/127", [=](const std::string& e) { return quantize(e, false, false); }},
      {"hex", [](const std::string& e) { return absl::BytesToHexString("prefix" + e); }},
      {"HEX",
       [](const std::string& e) {
         std::string hex = absl::BytesToHexString(e + "suffix");
         for (char& c : hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         return hex;
       }},
      {"base64 at offset 0", [](const std::string& e) { return absl::Base64Escape(e); }},
      {"base64 at offset 1", [](const std::string& e) { return absl::Base64Escape("x" + e); }},
      {"base64 at offset 2", [](const std::string& e) { return absl::Base64Escape("xy" + e); }},
  };
}

TEST(LeakScanner, FindsAStoredEmbeddingInEveryEncodingAndNotAnotherOne) {
  std::mt19937 rng(2024);
  const std::string stored = Float32Embedding(rng);
  const std::string other = Float32Embedding(rng);  // never stored: the negative control
  LeakPatterns patterns;
  ASSERT_TRUE(patterns.AddEmbedding(stored, "embedding 7").ok());
  patterns.Seal();
  for (const Smuggling& s : SmugglingForms()) {
    SCOPED_TRACE(s.form);
    const std::string leak = LowercaseNoise(rng, 333) + s.encode(stored) + LowercaseNoise(rng, 50);
    const std::vector<LeakFinding> found = ScanForLeaks(patterns, leak);
    ASSERT_FALSE(found.empty()) << "the " << s.form << " form of a stored embedding went unseen";
    EXPECT_EQ(found[0].kind, LeakKind::kStoredBytes);
    EXPECT_EQ(found[0].what.rfind("embedding 7", 0), 0u) << found[0].what;
    const std::string innocent =
        LowercaseNoise(rng, 333) + s.encode(other) + LowercaseNoise(rng, 50);
    EXPECT_TRUE(ScanForLeaks(patterns, innocent).empty())
        << "an embedding that is not stored matched in " << s.form << ": "
        << ScanForLeaks(patterns, innocent)[0].what;
  }
}

}  // namespace
}  // namespace fedface::partner::audit
