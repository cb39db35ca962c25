#include "workloads/os_event.h"

#include <fmt/format.h>

#include "workloads/trace_formats.h"

namespace shadowsim {
namespace {

using F = EventField;

// Indexed by OsEventKind. Both formats store the fields in this order.
const EventLayout kLayouts[kOsEventKinds] = {
    {2, {F::kStream, F::kHow}, "E create CHILD HOW"},
    {0, {}, "E exec"},
    {0, {}, "E exit"},
    {4, {F::kAddress, F::kAddress, F::kProt, F::kMmapFlags}, "E mmap ADDRESS LENGTH PROT FLAGS"},
    {2, {F::kAddress, F::kAddress}, "E munmap ADDRESS LENGTH"},
    {3, {F::kAddress, F::kAddress, F::kProt}, "E mprotect ADDRESS LENGTH PROT"},
    {1, {F::kAddress}, "E brk ADDRESS"},
    {5, {F::kAddress, F::kAddress, F::kAddress, F::kAddress, F::kMremapFlags},
     "E mremap ADDRESS LENGTH NEW_ADDRESS NEW_LENGTH FLAGS"},
    {1, {F::kStream}, "E switch STREAM"},
    {1, {F::kStream}, "E wait CHILD"},
};

struct FlagName {
  uint32_t bit;
  const char* name;
};
constexpr FlagName kMmapFlags[] = {
    {OsEvent::kMapShared, "shared"},       {OsEvent::kMapPrivate, "private"},
    {OsEvent::kMapFixed, "fixed"},         {OsEvent::kMapAnonymous, "anonymous"},
    {OsEvent::kMapGrowsDown, "growsdown"}, {OsEvent::kMapPopulate, "populate"},
    {OsEvent::kMapStack, "stack"}};
constexpr FlagName kMremapFlags[] = {{OsEvent::kMremapMayMove, "maymove"},
                                     {OsEvent::kMremapFixed, "fixed"},
                                     {OsEvent::kMremapDontUnmap, "dontunmap"}};

template <size_t N>
std::string flags_text(uint32_t flags, const FlagName (&names)[N]) {
  std::string s;
  for (const FlagName& f : names) {
    if (!(flags & f.bit)) continue;
    if (!s.empty()) s += ',';
    s += f.name;
  }
  return s.empty() ? "-" : s;
}

template <size_t N>
bool parse_flags(std::string_view text, const FlagName (&names)[N], uint32_t* flags) {
  *flags = 0;
  if (text == "-") return true;
  for (size_t start = 0;;) {
    const size_t comma = text.find(',', start);
    const std::string_view word = comma == std::string_view::npos
                                      ? text.substr(start)
                                      : text.substr(start, comma - start);
    uint32_t bit = 0;
    for (const FlagName& f : names) {
      if (word == f.name) bit = f.bit;
    }
    if (bit == 0 || (*flags & bit)) return false;  // unknown or repeated
    *flags |= bit;
    if (comma == std::string_view::npos) return true;
    start = comma + 1;
  }
}

bool wraps(uint64_t addr, uint64_t length) { return length && addr + (length - 1) < addr; }

}  // namespace

const char* to_string(StreamOrigin origin) {
  switch (origin) {
    case StreamOrigin::kInitial: return "initial";
    case StreamOrigin::kFork: return "fork";
    case StreamOrigin::kVfork: return "vfork";
    case StreamOrigin::kThread: return "thread";
  }
  return "?";
}

const char* to_string(OsEventKind kind) {
  switch (kind) {
    case OsEventKind::kCreate: return "create";
    case OsEventKind::kExec: return "exec";
    case OsEventKind::kExit: return "exit";
    case OsEventKind::kMmap: return "mmap";
    case OsEventKind::kMunmap: return "munmap";
    case OsEventKind::kMprotect: return "mprotect";
    case OsEventKind::kBrk: return "brk";
    case OsEventKind::kMremap: return "mremap";
    case OsEventKind::kSwitch: return "switch";
    case OsEventKind::kWait: return "wait";
  }
  return "?";
}

OsEvent OsEvent::create(uint32_t child, StreamOrigin how) {
  OsEvent e;
  e.kind = OsEventKind::kCreate;
  e.stream = child;
  e.how = how;
  return e;
}
OsEvent OsEvent::exec() {
  OsEvent e;
  e.kind = OsEventKind::kExec;
  return e;
}
OsEvent OsEvent::exit() {
  OsEvent e;
  e.kind = OsEventKind::kExit;
  return e;
}
OsEvent OsEvent::mmap(uint64_t addr, uint64_t length, uint8_t prot, uint32_t flags) {
  OsEvent e;
  e.kind = OsEventKind::kMmap;
  e.addr = addr;
  e.length = length;
  e.prot = prot;
  e.flags = flags;
  e.file = !(flags & kMapAnonymous);
  return e;
}
OsEvent OsEvent::munmap(uint64_t addr, uint64_t length) {
  OsEvent e;
  e.kind = OsEventKind::kMunmap;
  e.addr = addr;
  e.length = length;
  return e;
}
OsEvent OsEvent::mprotect(uint64_t addr, uint64_t length, uint8_t prot) {
  OsEvent e;
  e.kind = OsEventKind::kMprotect;
  e.addr = addr;
  e.length = length;
  e.prot = prot;
  return e;
}
OsEvent OsEvent::brk(uint64_t new_break) {
  OsEvent e;
  e.kind = OsEventKind::kBrk;
  e.addr = new_break;
  return e;
}
OsEvent OsEvent::mremap(uint64_t addr, uint64_t length, uint64_t new_addr, uint64_t new_length,
                        uint32_t flags) {
  OsEvent e;
  e.kind = OsEventKind::kMremap;
  e.addr = addr;
  e.length = length;
  e.new_addr = new_addr;
  e.new_length = new_length;
  e.flags = flags;
  return e;
}
OsEvent OsEvent::switch_to(uint32_t stream) {
  OsEvent e;
  e.kind = OsEventKind::kSwitch;
  e.stream = stream;
  return e;
}
OsEvent OsEvent::wait_for(uint32_t child) {
  OsEvent e;
  e.kind = OsEventKind::kWait;
  e.stream = child;
  return e;
}

bool operator==(const OsEvent& a, const OsEvent& b) {
  return a.kind == b.kind && a.how == b.how && a.prot == b.prot && a.file == b.file &&
         a.flags == b.flags && a.stream == b.stream && a.addr == b.addr && a.length == b.length &&
         a.new_addr == b.new_addr && a.new_length == b.new_length;
}

std::string event_problem(const OsEvent& e) {
  if (static_cast<unsigned>(e.kind) >= kOsEventKinds) {
    return fmt::format("event kind {}; expected 0..{}", static_cast<unsigned>(e.kind),
                       kOsEventKinds - 1);
  }
  const OsEventKind k = e.kind;
  const char* name = to_string(k);
  const bool range = k == OsEventKind::kMmap || k == OsEventKind::kMunmap ||
                     k == OsEventKind::kMprotect || k == OsEventKind::kMremap;
  const bool uses_prot = k == OsEventKind::kMmap || k == OsEventKind::kMprotect;
  const bool uses_flags = k == OsEventKind::kMmap || k == OsEventKind::kMremap;
  const bool uses_stream =
      k == OsEventKind::kCreate || k == OsEventKind::kSwitch || k == OsEventKind::kWait;
  const struct {
    const char* field;
    uint64_t value;
    bool used;
  } fields[] = {{"how", static_cast<uint64_t>(e.how), k == OsEventKind::kCreate},
                {"prot", e.prot, uses_prot},
                {"file", e.file, k == OsEventKind::kMmap},
                {"flags", e.flags, uses_flags},
                {"stream", e.stream, uses_stream},
                {"addr", e.addr, range || k == OsEventKind::kBrk},
                {"length", e.length, range},
                {"new_addr", e.new_addr, k == OsEventKind::kMremap},
                {"new_length", e.new_length, k == OsEventKind::kMremap}};
  for (const auto& f : fields) {
    if (!f.used && f.value) {
      return fmt::format("{}: {} is {:#x}; expected 0 ({} has no {})", name, f.field, f.value, name,
                         f.field);
    }
  }
  if (k == OsEventKind::kCreate && e.how == StreamOrigin::kInitial) {
    return "create: how 'initial'; expected fork, vfork or thread";
  }
  if (k == OsEventKind::kCreate && static_cast<unsigned>(e.how) > 3) {
    return fmt::format("create: how {}; expected 1 (fork), 2 (vfork) or 3 (thread)",
                       static_cast<unsigned>(e.how));
  }
  if (e.prot & ~OsEvent::kProtAll) {
    return fmt::format("{}: prot {:#x}; expected bits of 0x7 (read 1, write 2, exec 4)", name,
                       e.prot);
  }
  if (k == OsEventKind::kMmap) {
    if (e.flags & ~OsEvent::kMapKnown) {
      return fmt::format("mmap: flags {:#x} has bits outside {:#x} ({})", e.flags,
                         OsEvent::kMapKnown, mmap_flags_text(OsEvent::kMapKnown));
    }
    const uint32_t type = e.flags & (OsEvent::kMapShared | OsEvent::kMapPrivate);
    if (type != OsEvent::kMapShared && type != OsEvent::kMapPrivate) {
      return fmt::format("mmap: flags {}; expected exactly one of shared and private",
                         mmap_flags_text(e.flags));
    }
    if (e.file == ((e.flags & OsEvent::kMapAnonymous) != 0)) {
      return fmt::format("mmap: file {} with flags {}; expected file-backed exactly when not "
                         "anonymous", e.file, mmap_flags_text(e.flags));
    }
  }
  if (k == OsEventKind::kMremap && (e.flags & ~OsEvent::kMremapKnown)) {
    return fmt::format("mremap: flags {:#x}; expected bits of 0x7 (maymove 1, fixed 2, "
                       "dontunmap 4)", e.flags);
  }
  if (range && wraps(e.addr, e.length)) {
    return fmt::format("{}: range {:#x} + {:#x} wraps past 2^64", name, e.addr, e.length);
  }
  if (k == OsEventKind::kMremap && wraps(e.new_addr, e.new_length)) {
    return fmt::format("mremap: new range {:#x} + {:#x} wraps past 2^64", e.new_addr,
                       e.new_length);
  }
  return {};
}

std::string prot_text(uint8_t prot) {
  std::string s = "---";
  if (prot & OsEvent::kProtRead) s[0] = 'r';
  if (prot & OsEvent::kProtWrite) s[1] = 'w';
  if (prot & OsEvent::kProtExec) s[2] = 'x';
  return s;
}

std::string mmap_flags_text(uint32_t flags) { return flags_text(flags, kMmapFlags); }
std::string mremap_flags_text(uint32_t flags) { return flags_text(flags, kMremapFlags); }

std::string event_text(const OsEvent& e) {
  if (static_cast<unsigned>(e.kind) >= kOsEventKinds) return "?";
  const EventLayout& layout = event_layout(e.kind);
  uint64_t values[kMaxEventFields];
  event_fields(e, values);
  std::string s = to_string(e.kind);
  for (int i = 0; i < layout.count; ++i) {
    s += ' ';
    const uint64_t v = values[i];
    switch (layout.fields[i]) {
      case F::kStream: s += std::to_string(v); break;
      case F::kHow: s += to_string(static_cast<StreamOrigin>(v)); break;
      case F::kAddress: s += fmt::format("{:#x}", v); break;
      case F::kProt: s += prot_text(static_cast<uint8_t>(v)); break;
      case F::kMmapFlags: s += mmap_flags_text(static_cast<uint32_t>(v)); break;
      case F::kMremapFlags: s += mremap_flags_text(static_cast<uint32_t>(v)); break;
    }
  }
  return s;
}

const EventLayout& event_layout(OsEventKind kind) { return kLayouts[static_cast<int>(kind)]; }

int event_fields(const OsEvent& e, uint64_t* v) {
  switch (e.kind) {
    case OsEventKind::kCreate:
      v[0] = e.stream;
      v[1] = static_cast<uint64_t>(e.how);
      break;
    case OsEventKind::kSwitch:
    case OsEventKind::kWait: v[0] = e.stream; break;
    case OsEventKind::kExec:
    case OsEventKind::kExit: break;
    case OsEventKind::kBrk: v[0] = e.addr; break;
    case OsEventKind::kMmap:
      v[3] = e.flags;
      [[fallthrough]];
    case OsEventKind::kMprotect:
      v[2] = e.prot;
      [[fallthrough]];
    case OsEventKind::kMunmap:
      v[0] = e.addr;
      v[1] = e.length;
      break;
    case OsEventKind::kMremap:
      v[0] = e.addr;
      v[1] = e.length;
      v[2] = e.new_addr;
      v[3] = e.new_length;
      v[4] = e.flags;
      break;
  }
  return event_layout(e.kind).count;
}

bool event_from_fields(OsEventKind kind, const uint64_t* v, OsEvent* out, std::string* problem) {
  const EventLayout& layout = event_layout(kind);
  for (int i = 0; i < layout.count; ++i) {
    uint64_t max = UINT64_MAX;
    switch (layout.fields[i]) {
      case F::kStream: max = UINT32_MAX; break;
      case F::kHow: max = 3; break;
      case F::kProt: max = OsEvent::kProtAll; break;
      case F::kMmapFlags:
      case F::kMremapFlags: max = UINT32_MAX; break;
      case F::kAddress: break;
    }
    if (v[i] > max) {
      *problem = fmt::format("{}: field {} is {:#x}; expected at most {:#x} ({})", to_string(kind),
                             i + 1, v[i], max, layout.syntax);
      return false;
    }
  }
  OsEvent e;
  switch (kind) {
    case OsEventKind::kCreate:
      e = OsEvent::create(static_cast<uint32_t>(v[0]), static_cast<StreamOrigin>(v[1]));
      break;
    case OsEventKind::kExec: e = OsEvent::exec(); break;
    case OsEventKind::kExit: e = OsEvent::exit(); break;
    case OsEventKind::kMmap:
      e = OsEvent::mmap(v[0], v[1], static_cast<uint8_t>(v[2]), static_cast<uint32_t>(v[3]));
      break;
    case OsEventKind::kMunmap: e = OsEvent::munmap(v[0], v[1]); break;
    case OsEventKind::kMprotect:
      e = OsEvent::mprotect(v[0], v[1], static_cast<uint8_t>(v[2]));
      break;
    case OsEventKind::kBrk: e = OsEvent::brk(v[0]); break;
    case OsEventKind::kMremap:
      e = OsEvent::mremap(v[0], v[1], v[2], v[3], static_cast<uint32_t>(v[4]));
      break;
    case OsEventKind::kSwitch: e = OsEvent::switch_to(static_cast<uint32_t>(v[0])); break;
    case OsEventKind::kWait: e = OsEvent::wait_for(static_cast<uint32_t>(v[0])); break;
  }
  *problem = event_problem(e);
  if (!problem->empty()) return false;
  *out = e;
  return true;
}

bool parse_prot(std::string_view text, uint8_t* prot) {
  if (text.size() != 3) return false;
  const char letters[] = "rwx";
  *prot = 0;
  for (int i = 0; i < 3; ++i) {
    if (text[i] == letters[i]) {
      *prot |= static_cast<uint8_t>(1 << i);
    } else if (text[i] != '-') {
      return false;
    }
  }
  return true;
}

bool parse_mmap_flags(std::string_view text, uint32_t* flags) {
  return parse_flags(text, kMmapFlags, flags);
}
bool parse_mremap_flags(std::string_view text, uint32_t* flags) {
  return parse_flags(text, kMremapFlags, flags);
}

}  // namespace shadowsim
