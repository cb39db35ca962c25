// Buffered byte input and output over plain files or zstd streams: the layer under every trace
// format, so each format decodes from a plain memory buffer and compression is orthogonal to it.
// Internal to workloads/.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace shadowsim {

// A read or decompression failure below the format layer. Readers catch it and rethrow an Error
// that also names the record or line where the data stopped making sense.
class SourceError : public Error {
 public:
  using Error::Error;
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to cap bytes into dst; 0 only at the end of the data. Throws SourceError.
  virtual size_t read(uint8_t* dst, size_t cap) = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void write(const uint8_t* data, size_t n) = 0;  // throws Error
  virtual void finish() = 0;  // ends the stream (zstd epilogue) and closes the file; throws Error
};

// fopen/fclose with Error messages naming the path.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;
FilePtr open_file(const std::string& path, const char* mode);

std::unique_ptr<ByteSource> file_source(const std::string& path);
std::unique_ptr<ByteSource> zstd_source(const std::string& path);  // decompresses the file
std::unique_ptr<ByteSink> file_sink(const std::string& path);
std::unique_ptr<ByteSink> zstd_sink(const std::string& path, int level);

// True when the file starts with the zstd frame magic (28 b5 2f fd). Throws if it can't be read.
bool is_zstd_file(const std::string& path);

// A sliding window [pos, end) over a source. Behind end lie kPadding zero bytes, so a decoder may
// read a whole record's worth past a short tail and check afterwards instead of per byte.
class InputBuffer {
 public:
  static constexpr size_t kPadding = 64;

  InputBuffer(std::unique_ptr<ByteSource> source, std::string path, size_t capacity = 1 << 18);

  const uint8_t* pos() const { return pos_; }
  const uint8_t* end() const { return end_; }
  void set_pos(const uint8_t* p) { pos_ = p; }
  // Makes at least `want` bytes available unless the source ends first; returns how many are.
  size_t fill(size_t want);
  bool exhausted() const { return exhausted_; }
  // Offset in the (decompressed) stream of a pointer into the window.
  uint64_t offset(const uint8_t* p) const { return base_offset_ + (p - buf_.data()); }
  const std::string& path() const { return path_; }

 private:
  std::unique_ptr<ByteSource> source_;
  std::string path_;
  std::vector<uint8_t> buf_;
  const uint8_t* pos_;
  const uint8_t* end_;
  uint64_t base_offset_ = 0;  // stream offset of buf_[0]
  bool exhausted_ = false;
};

// Collects small writes and hands the sink large blocks.
class OutputBuffer {
 public:
  static constexpr size_t kCapacity = 1 << 18;

  explicit OutputBuffer(std::unique_ptr<ByteSink> sink) : sink_(std::move(sink)) {
    buf_.resize(kCapacity);
  }
  // Best effort: what was written reaches the file even without finish(), so an abandoned binary
  // trace is reported as lacking its end marker rather than as empty.
  ~OutputBuffer() {
    try {
      flush();
    } catch (const Error&) {
    }
  }
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;
  // Room for at least n more bytes; returns where to write them. Commit with advance().
  uint8_t* reserve(size_t n) {
    if (kCapacity - used_ < n) flush();
    return buf_.data() + used_;
  }
  void advance(uint8_t* p) { used_ = static_cast<size_t>(p - buf_.data()); }
  void append(const void* data, size_t n);
  void flush();
  void finish() {
    flush();
    sink_->finish();
  }

 private:
  std::unique_ptr<ByteSink> sink_;
  std::vector<uint8_t> buf_;
  size_t used_ = 0;
};

}  // namespace shadowsim
