// OS events a trace stream carries among its memory references: the process's own
// memory-management system calls and its lifecycle, in order with its references, for the guest
// OS model. A reader returns each as a RefKind::kEvent record whose `va` indexes
// TraceReader::events() (workloads/trace_reader.h). Encodings: docs/trace-format.md.
#pragma once

#include <cstdint>
#include <string>

namespace shadowsim {

// How a stream came to be: the first process(es) of the workload, or created by its parent.
// The values are the binary format's `how` field of a create event, so they are fixed.
enum class StreamOrigin : uint8_t { kInitial = 0, kFork = 1, kVfork = 2, kThread = 3 };
const char* to_string(StreamOrigin origin);  // "initial", "fork", "vfork", "thread"

// The values are the binary tag less 0x80, so they are fixed.
enum class OsEventKind : uint8_t {
  kCreate = 0,    // this stream created stream `stream`, as `how` (fork, vfork or thread)
  kExec = 1,      // the process replaced its image: the references after it are the new image's
  kExit = 2,      // the process (or thread) exits
  kMmap = 3,      // [addr, addr + length) mapped with `prot` and `flags`; `file`: file-backed
  kMunmap = 4,    // [addr, addr + length) unmapped
  kMprotect = 5,  // [addr, addr + length) now has `prot`
  kBrk = 6,       // the program break is now `addr` (brk's result: unchanged if it was refused)
  kMremap = 7,    // [addr, +length) became [new_addr, +new_length); `flags` MREMAP_*
  kSwitch = 8,    // a recorded schedule: this CPU switched to stream `stream` (optional
                  // information; a scheduler may ignore it)
  kWait = 9,      // wait4: the process blocks until its child stream `stream` has exited
};
constexpr int kOsEventKinds = 10;

const char* to_string(OsEventKind kind);  // "create", "exec", ..., "switch": the text keywords

// Plain integers, no strings, so a batch of events is one vector of PODs. Fields a kind does not
// use are 0 (readers produce that; writers insist on it, so round trips compare equal).
struct OsEvent {
  // prot: Linux PROT_* values.
  static constexpr uint8_t kProtRead = 1, kProtWrite = 2, kProtExec = 4;
  static constexpr uint8_t kProtAll = 7;
  // mmap flags kept: Linux MAP_* values. Exactly one of shared/private. `fixed` matters to a
  // consumer because such a mapping replaces whatever was mapped there; `populate` because the
  // kernel faults the whole range in at once.
  static constexpr uint32_t kMapShared = 0x01, kMapPrivate = 0x02, kMapFixed = 0x10,
                            kMapAnonymous = 0x20, kMapGrowsDown = 0x100, kMapPopulate = 0x8000,
                            kMapStack = 0x20000;
  static constexpr uint32_t kMapKnown = kMapShared | kMapPrivate | kMapFixed | kMapAnonymous |
                                        kMapGrowsDown | kMapPopulate | kMapStack;
  // mremap flags: Linux MREMAP_* values.
  static constexpr uint32_t kMremapMayMove = 1, kMremapFixed = 2, kMremapDontUnmap = 4;
  static constexpr uint32_t kMremapKnown = 7;

  OsEventKind kind = OsEventKind::kExit;
  StreamOrigin how = StreamOrigin::kInitial;  // kCreate: kFork, kVfork or kThread
  uint8_t prot = 0;      // kMmap, kMprotect: kProt* bits
  // kMmap: file-backed (the fd was not -1). Always !(flags & kMapAnonymous): Linux ignores the
  // fd of an anonymous mapping and fails a non-anonymous one without a file, so the formats
  // store only the flags and writers refuse an event where the two disagree.
  bool file = false;
  uint32_t flags = 0;    // kMmap: kMap* bits; kMremap: kMremap* bits
  uint32_t stream = 0;   // kCreate: the child's stream id; kSwitch: the stream switched to;
                         // kWait: the child waited for
  uint64_t addr = 0;     // kMmap (where the mapping is: mmap's result), kMunmap, kMprotect: start;
                         // kBrk: the new break; kMremap: the old start
  uint64_t length = 0;   // kMmap, kMunmap, kMprotect; kMremap: the old length
  uint64_t new_addr = 0;    // kMremap: where the mapping is now (mremap's result)
  uint64_t new_length = 0;  // kMremap

  static OsEvent create(uint32_t child, StreamOrigin how);
  static OsEvent exec();
  static OsEvent exit();
  // `file` follows from the flags (no kMapAnonymous).
  static OsEvent mmap(uint64_t addr, uint64_t length, uint8_t prot, uint32_t flags);
  static OsEvent munmap(uint64_t addr, uint64_t length);
  static OsEvent mprotect(uint64_t addr, uint64_t length, uint8_t prot);
  static OsEvent brk(uint64_t new_break);
  static OsEvent mremap(uint64_t addr, uint64_t length, uint64_t new_addr, uint64_t new_length,
                        uint32_t flags);
  static OsEvent switch_to(uint32_t stream);
  static OsEvent wait_for(uint32_t child);
};

bool operator==(const OsEvent& a, const OsEvent& b);
inline bool operator!=(const OsEvent& a, const OsEvent& b) { return !(a == b); }

// What is wrong with an event the formats cannot hold, e.g. "mmap: prot 0x9; expected bits of
// 0x7"; empty if it is fine. Readers and writers add the file and record or line.
std::string event_problem(const OsEvent& e);

// The text format's words after "E", e.g. "mmap 0x7f0000000000 0x21000 rw- private,anonymous".
std::string event_text(const OsEvent& e);
// Prot as three letters, "rw-"; flags as a comma-separated list of names ("-" for none).
std::string prot_text(uint8_t prot);
std::string mmap_flags_text(uint32_t flags);
std::string mremap_flags_text(uint32_t flags);

}  // namespace shadowsim
