// Shared helpers of the libFuzzer targets (docs/fuzzing.md). Each target feeds one parser and
// accepts only the errors the parser documents (shadowsim::Error and its subclasses): any other
// exception escapes LLVMFuzzerTestOneInput, terminates the process and so is a finding, as are
// sanitizer reports, crashes and timeouts.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "workloads/byte_stream.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_record.h"

namespace shadowsim::fuzz {

// Bound on the records one input may yield, so a target cannot run forever legitimately.
constexpr uint64_t kMaxRecords = 1 << 20;

// The input as a ByteSource, handed out in small chunks so that the InputBuffer refills (and
// slides its window) often: the boundary code gets exercised, not just the decoders.
class MemorySource final : public ByteSource {
 public:
  MemorySource(const uint8_t* data, size_t size, size_t chunk = 61)
      : data_(data), size_(size), chunk_(chunk) {}
  size_t read(uint8_t* dst, size_t cap) override {
    size_t n = size_ - pos_;
    if (n > cap) n = cap;
    if (n > chunk_) n = chunk_;
    if (n) std::memcpy(dst, data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t chunk_;
  size_t pos_ = 0;
};

// A small window (grown on demand by InputBuffer::fill) for the same reason.
inline std::unique_ptr<InputBuffer> memory_buffer(const uint8_t* data, size_t size,
                                                  const char* name) {
  return std::make_unique<InputBuffer>(std::make_unique<MemorySource>(data, size), name, 128);
}

// Drains a reader, checking the TraceReader contract: sizes 1..255 for references, 0 and an
// index into events() for OS events. A violation aborts (a finding).
inline void drain(TraceReader& reader) {
  TraceRecord batch[97];
  uint64_t total = 0;
  while (size_t n = reader.read(batch, 97)) {
    if (n > 97) std::abort();
    for (size_t i = 0; i < n; ++i) {
      const TraceRecord& r = batch[i];
      if (r.kind == RefKind::kEvent) {
        if (r.size != 0 || r.va >= reader.events().size()) std::abort();
      } else if (static_cast<int>(r.kind) > 3 || r.size == 0) {
        std::abort();
      }
    }
    total += n;
    if (total >= kMaxRecords) break;
  }
}

// A private scratch folder for the targets whose entry point takes a path; removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::string templ = (std::filesystem::temp_directory_path() / "shadowsim-fuzz-XXXXXX").string();
    if (!mkdtemp(templ.data())) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return std::filesystem::path(templ);
  }();
  return dir;
}

inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = (scratch_dir() / name).string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Empties the scratch folder (between inputs of the importers).
inline void clear_scratch() {
  for (const auto& entry : std::filesystem::directory_iterator(scratch_dir())) {
    std::filesystem::remove_all(entry.path());
  }
}

}  // namespace shadowsim::fuzz
