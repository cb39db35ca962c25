// Helpers shared by the trace tests: a scratch folder per test, file I/O, random records.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_record.h"
#include "workloads/trace_writer.h"

namespace shadowsim::test {

// A fresh folder for the running test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("shadowsim-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" +
            info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~ScratchDir() { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Records shaped like real ones (runs of sequential fetches, data near the last data address,
// small sizes and gaps) mixed with extremes (addresses 0 and ~0, far jumps, sizes up to 255,
// gaps up to 2^32-1), so every branch of the encodings is exercised.
inline std::vector<TraceRecord> random_records(uint64_t seed, size_t n) {
  Rng rng(seed);
  std::vector<TraceRecord> v;
  v.reserve(n);
  uint64_t pc = 0x400000, data = 0x7ffd0000;
  for (size_t i = 0; i < n; ++i) {
    TraceRecord r;
    const uint64_t k = rng.below(10);
    r.kind = k < 6 ? RefKind::kFetch : k < 9 ? RefKind::kRead : RefKind::kWrite;
    if (r.kind == RefKind::kFetch) {
      r.size = static_cast<uint8_t>(1 + rng.below(15));
      if (rng.chance(0.1)) pc = rng.chance(0.5) ? rng.next() : pc + rng.below(4096) - 2048;
      r.va = pc;
      pc += r.size;
    } else {
      const uint64_t sizes[] = {1, 2, 4, 8, 16, 32, 64};
      r.size = static_cast<uint8_t>(rng.chance(0.05) ? 1 + rng.below(255) : sizes[rng.below(7)]);
      if (rng.chance(0.02)) data = rng.chance(0.5) ? 0 : ~0ULL - rng.below(16);
      else if (rng.chance(0.1)) data = rng.next();
      else data += rng.below(512) - 256;
      r.va = data;
    }
    const uint64_t g = rng.below(100);
    r.gap = g < 70 ? 0 : g < 98 ? static_cast<uint32_t>(rng.below(300))
                                : static_cast<uint32_t>(UINT32_MAX - rng.below(2));
    v.push_back(r);
  }
  return v;
}

inline void write_trace(const std::string& path, const std::vector<TraceRecord>& records) {
  auto w = create_trace(path);
  w->write(records.data(), records.size());
  w->close();
}

// Reads the whole stream with batches of `batch` records.
inline std::vector<TraceRecord> read_all(TraceReader& reader, size_t batch = 4096) {
  std::vector<TraceRecord> all, buf(batch);
  while (const size_t n = reader.read(buf.data(), buf.size())) {
    EXPECT_LE(n, batch);
    all.insert(all.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
  }
  EXPECT_EQ(reader.read(buf.data(), buf.size()), 0u) << "end of stream must stay the end";
  return all;
}

inline std::vector<TraceRecord> read_all(const std::string& path,
                                         const TraceOpenOptions& options = {}) {
  auto reader = open_trace(path, options);
  return read_all(*reader);
}

// The message of the Error that f throws (fails the test if none is thrown).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected shadowsim::Error";
  return {};
}

}  // namespace shadowsim::test

namespace shadowsim {
inline std::ostream& operator<<(std::ostream& o, const TraceRecord& r) {
  return o << kind_letter(r.kind) << " 0x" << std::hex << r.va << std::dec << ' '
           << unsigned{r.size} << " +" << r.gap;
}
}  // namespace shadowsim
