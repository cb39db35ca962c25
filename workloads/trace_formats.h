// Constructors of the per-format readers and writers behind open_trace() and create_trace().
// Internal to workloads/.
#pragma once

#include <memory>
#include <string>

#include "workloads/byte_stream.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_writer.h"

namespace shadowsim {

// Each reader takes the buffer positioned at the start of the (decompressed) data.
std::unique_ptr<TraceReader> make_binary_reader(std::unique_ptr<InputBuffer> in);
std::unique_ptr<TraceReader> make_text_reader(std::unique_ptr<InputBuffer> in);
std::unique_ptr<TraceReader> make_lackey_reader(std::unique_ptr<InputBuffer> in);

std::unique_ptr<TraceWriter> make_binary_writer(std::unique_ptr<ByteSink> sink, std::string path);
std::unique_ptr<TraceWriter> make_text_writer(std::unique_ptr<ByteSink> sink, std::string path);

// Splits an InputBuffer into lines for the text formats: line numbers from 1, '\r' before '\n'
// dropped, the last line may lack its '\n'. Lines are views into the buffer, valid until the
// next call.
class LineReader {
 public:
  static constexpr size_t kMaxLine = 1 << 16;

  explicit LineReader(std::unique_ptr<InputBuffer> in) : in_(std::move(in)) {}
  bool next(const char** begin, const char** end);  // false at the end of the data
  uint64_t line() const { return line_; }
  const std::string& path() const { return in_->path(); }

 private:
  std::unique_ptr<InputBuffer> in_;
  uint64_t line_ = 0;
};

}  // namespace shadowsim
