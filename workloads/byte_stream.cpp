#include "workloads/byte_stream.h"

#include <zstd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace shadowsim {
namespace {

constexpr uint8_t kZstdMagic[4] = {0x28, 0xb5, 0x2f, 0xfd};

struct DCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};
struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

class FileSource final : public ByteSource {
 public:
  explicit FileSource(const std::string& path) : path_(path), file_(open_file(path, "rb")) {}

  size_t read(uint8_t* dst, size_t cap) override {
    const size_t n = std::fread(dst, 1, cap, file_.get());
    if (n == 0 && std::ferror(file_.get())) {
      throw SourceError(fmt::format("read error ({})", std::strerror(errno)));
    }
    return n;
  }

 private:
  std::string path_;
  FilePtr file_;
};

class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(const std::string& path)
      : file_(path), dctx_(ZSTD_createDCtx()), in_buf_(ZSTD_DStreamInSize()) {
    if (!dctx_) throw Error(fmt::format("{}: cannot create a zstd decompression context", path));
    in_ = {in_buf_.data(), 0, 0};
  }

  size_t read(uint8_t* dst, size_t cap) override {
    ZSTD_outBuffer out{dst, cap, 0};
    while (out.pos == 0) {
      if (in_.pos == in_.size && !file_eof_) {
        in_.size = file_.read(in_buf_.data(), in_buf_.size());
        in_.pos = 0;
        compressed_offset_ += in_.size;
        file_eof_ = in_.size == 0;
      }
      const bool no_input = in_.pos == in_.size;
      // At the end of the file the decoder may still hold output; once it has none, a frame that
      // has not ended means the file was cut short.
      if (no_input && last_ == 0) return 0;
      const size_t ret = ZSTD_decompressStream(dctx_.get(), &out, &in_);
      if (ZSTD_isError(ret)) {
        throw SourceError(fmt::format("corrupt zstd data near compressed byte {} ({})",
                                      compressed_offset_ - (in_.size - in_.pos),
                                      ZSTD_getErrorName(ret)));
      }
      last_ = ret;
      if (no_input && out.pos == 0) {
        throw SourceError("the compressed data ends inside a zstd frame (truncated file?)");
      }
    }
    return out.pos;
  }

 private:
  FileSource file_;
  std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx_;
  std::vector<uint8_t> in_buf_;
  ZSTD_inBuffer in_;
  uint64_t compressed_offset_ = 0;  // bytes read from the file so far
  size_t last_ = 1;                 // last ZSTD_decompressStream result; 0 = at a frame boundary
  bool file_eof_ = false;
};

class FileSink final : public ByteSink {
 public:
  explicit FileSink(const std::string& path) : path_(path), file_(open_file(path, "wb")) {}

  void write(const uint8_t* data, size_t n) override {
    if (std::fwrite(data, 1, n, file_.get()) != n) {
      throw Error(fmt::format("{}: write error ({})", path_, std::strerror(errno)));
    }
  }
  void finish() override {
    if (!file_) return;
    const bool flushed = std::fflush(file_.get()) == 0 && !std::ferror(file_.get());
    const bool closed = std::fclose(file_.release()) == 0;
    if (!flushed || !closed) {
      throw Error(fmt::format("{}: write error ({})", path_, std::strerror(errno)));
    }
  }

 private:
  std::string path_;
  FilePtr file_;
};

class ZstdSink final : public ByteSink {
 public:
  ZstdSink(const std::string& path, int level)
      : path_(path), file_(path), cctx_(ZSTD_createCCtx()), out_buf_(ZSTD_CStreamOutSize()) {
    if (!cctx_) throw Error(fmt::format("{}: cannot create a zstd compression context", path));
    check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level));
    // The frame checksum lets a reader tell a corrupt trace from a strange program.
    check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1));
  }

  void write(const uint8_t* data, size_t n) override { compress(data, n, ZSTD_e_continue); }
  void finish() override {
    if (finished_) return;
    compress(nullptr, 0, ZSTD_e_end);
    finished_ = true;
    file_.finish();
  }

 private:
  void check(size_t ret) const {
    if (ZSTD_isError(ret)) {
      throw Error(fmt::format("{}: zstd compression failed ({})", path_, ZSTD_getErrorName(ret)));
    }
  }
  void compress(const uint8_t* data, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer out{out_buf_.data(), out_buf_.size(), 0};
      const size_t remaining = ZSTD_compressStream2(cctx_.get(), &out, &in, mode);
      check(remaining);
      if (out.pos) file_.write(out_buf_.data(), out.pos);
      const bool done = mode == ZSTD_e_end ? remaining == 0 : in.pos == in.size;
      if (done) return;
    }
  }

  std::string path_;
  FileSink file_;
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx_;
  std::vector<uint8_t> out_buf_;
  bool finished_ = false;
};

}  // namespace

FilePtr open_file(const std::string& path, const char* mode) {
  FilePtr f(std::fopen(path.c_str(), mode));
  if (!f) {
    throw Error(fmt::format("{}: cannot open for {} ({})", path,
                            mode[0] == 'r' ? "reading" : "writing", std::strerror(errno)));
  }
  return f;
}

std::unique_ptr<ByteSource> file_source(const std::string& path) {
  return std::make_unique<FileSource>(path);
}
std::unique_ptr<ByteSource> zstd_source(const std::string& path) {
  return std::make_unique<ZstdSource>(path);
}
std::unique_ptr<ByteSink> file_sink(const std::string& path) {
  return std::make_unique<FileSink>(path);
}
std::unique_ptr<ByteSink> zstd_sink(const std::string& path, int level) {
  if (level < 1 || level > ZSTD_maxCLevel()) {  // before the file is created
    throw Error(fmt::format("zstd level {}: expected 1..{}", level, ZSTD_maxCLevel()));
  }
  return std::make_unique<ZstdSink>(path, level);
}

bool is_zstd_file(const std::string& path) {
  FilePtr f = open_file(path, "rb");
  uint8_t magic[4];
  return std::fread(magic, 1, 4, f.get()) == 4 && std::memcmp(magic, kZstdMagic, 4) == 0;
}

InputBuffer::InputBuffer(std::unique_ptr<ByteSource> source, std::string path, size_t capacity)
    : source_(std::move(source)), path_(std::move(path)) {
  buf_.assign(capacity + kPadding, 0);
  pos_ = end_ = buf_.data();
}

size_t InputBuffer::fill(size_t want) {
  size_t have = static_cast<size_t>(end_ - pos_);
  if (have >= want || exhausted_) return have;
  const size_t capacity = buf_.size() - kPadding;
  const size_t start = static_cast<size_t>(pos_ - buf_.data());
  base_offset_ += start;
  if (want > capacity) {
    std::vector<uint8_t> bigger(want + kPadding, 0);
    std::memcpy(bigger.data(), pos_, have);
    buf_.swap(bigger);
  } else {
    std::memmove(buf_.data(), pos_, have);
  }
  uint8_t* const base = buf_.data();
  const size_t cap = buf_.size() - kPadding;
  // Fill the whole window, so refills (and virtual calls) stay rare.
  while (have < cap) {
    const size_t n = source_->read(base + have, cap - have);
    if (n == 0) {
      exhausted_ = true;
      break;
    }
    have += n;
  }
  std::memset(base + have, 0, kPadding);
  pos_ = base;
  end_ = base + have;
  return have;
}

void OutputBuffer::append(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (n) {
    if (used_ == kCapacity) flush();
    const size_t chunk = std::min(n, kCapacity - used_);
    std::memcpy(buf_.data() + used_, p, chunk);
    used_ += chunk;
    p += chunk;
    n -= chunk;
  }
}

void OutputBuffer::flush() {
  if (used_) sink_->write(buf_.data(), used_);
  used_ = 0;
}

}  // namespace shadowsim
