// Constructors of the per-format readers and writers behind open_trace() and create_trace().
// Internal to workloads/.
#pragma once

#include <memory>
#include <string>
#include <string_view>

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

// The fields of each OS-event kind, in the order both formats store them (docs/trace-format.md).
enum class EventField : uint8_t {
  kStream,       // a stream id: decimal in text, 0..2^32-1
  kHow,          // create's StreamOrigin: fork, vfork or thread
  kAddress,      // an address or a length: 0x and hex in text
  kProt,         // three letters in text, rw-
  kMmapFlags,    // OsEvent::kMap* names in text, comma-separated
  kMremapFlags,  // OsEvent::kMremap* names in text, or "-"
};
constexpr int kMaxEventFields = 5;
struct EventLayout {
  int count;
  EventField fields[kMaxEventFields];
  const char* syntax;  // the text form, for messages: "E munmap ADDRESS LENGTH"
};
const EventLayout& event_layout(OsEventKind kind);  // kind must be valid
// The event's field values in layout order; returns how many.
int event_fields(const OsEvent& e, uint64_t* values);
// The event with these field values; false with *problem set if one is out of range for its
// field or the event is malformed (event_problem).
bool event_from_fields(OsEventKind kind, const uint64_t* values, OsEvent* e,
                       std::string* problem);
// The text forms of the kProt and flag fields; false if `text` is not one.
bool parse_prot(std::string_view text, uint8_t* prot);
bool parse_mmap_flags(std::string_view text, uint32_t* flags);
bool parse_mremap_flags(std::string_view text, uint32_t* flags);

// For writers: the event a kEvent record stands for, checked (index in range, size 0, a
// well-formed event); throws Error naming the file and the record otherwise.
const OsEvent& event_to_write(const std::string& path, uint64_t record, const TraceRecord& r,
                              const OsEvent* events, size_t n_events);

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
