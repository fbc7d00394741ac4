// Helpers for the package tests: small fake packages and re-signing a manifest after an edit
// (to prove checks that come AFTER the signature, the edit must be validly signed).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "core/common/files.h"
#include "core/package/ed25519.h"
#include "core/package/package_writer.h"

namespace fedface::testing {

// A 150x150 RGB chip whose channels differ everywhere (so a BGR/RGB swap is visible).
inline cv::Mat MakeChip(int seed) {
  cv::Mat chip(kChipSize, kChipSize, CV_8UC3);
  for (int y = 0; y < kChipSize; ++y) {
    for (int x = 0; x < kChipSize; ++x) {
      chip.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(200 + seed), static_cast<uchar>(x),
                                           static_cast<uchar>((y * 7 + seed) % 50));
    }
  }
  return chip;
}

inline Embedding MakeEmbedding(int seed) {
  Embedding e{};
  for (int i = 0; i < kEmbeddingDim; ++i)
    e[i] = 0.01f * static_cast<float>((i * 31 + seed) % 17) - 0.08f;
  return e;
}

// Deterministic bytes standing in for the dlib weights (the writer/verifier never parse them).
inline std::string FakeWeights(size_t n = 4096) {
  std::string w(n, '\0');
  for (size_t i = 0; i < n; ++i) w[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return w;
}

inline PackageFields TestFields() {
  PackageFields f;
  f.version = "1.2.3";
  f.source.npm_package = "@vladmandic/face-api@1.7.15";
  f.source.manifest_sha256 = std::string(64, 'a');
  f.source.bin_sha256 = std::string(64, 'b');
  f.created_at = "2024-05-01T12:00:00Z";
  return f;
}

inline std::vector<SelfTestChip> TestChips(int n = 2) {
  std::vector<SelfTestChip> chips;
  for (int i = 0; i < n; ++i) chips.push_back({MakeChip(i), MakeEmbedding(i)});
  return chips;
}

inline std::string Slurp(const std::string& path) {
  auto data = ReadFile(path);
  return data.ok() ? *data : std::string();
}

inline void Spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline void FlipByte(const std::string& path, size_t offset) {
  std::string data = Slurp(path);
  ASSERT_LT(offset, data.size()) << path;
  data[offset] = static_cast<char>(data[offset] ^ 0x01);
  Spit(path, data);
}

// Applies `edit` to the package's manifest JSON and re-signs it with `key`.
inline void EditAndResign(const std::string& dir, const Ed25519PrivateKey& key,
                          const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(Slurp(dir + "/manifest.json"));
  edit(j);
  const std::string bytes = j.dump(2) + "\n";
  Spit(dir + "/manifest.json", bytes);
  auto sig = key.Sign(bytes);
  ASSERT_TRUE(sig.ok()) << sig.status();
  Spit(dir + "/manifest.sig", *sig);
}

// Copies a package folder (for tests that damage a copy of a shared package).
inline std::string CopyPackage(const std::string& from, const std::string& to_parent) {
  const std::string to = to_parent + "/pkg";
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
  return to;
}

}  // namespace fedface::testing
