#include "walk_demo.h"

#include <vector>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

struct DemoAccess {
  uint64_t va;
  Access access;
  const char* note;
};

void print_walk(std::ostream& out, PagingMode mode, const DemoAccess& d, const WalkResult& r) {
  fmt::print(out, "  {:<5} {:<4} {:#018x}  {}\n", to_string(d.access.kind),
             d.access.user ? "user" : "kern", d.va, d.note);
  for (uint8_t i = 0; i < r.ref_count; ++i) {
    const PageTableRef& ref = r.refs[i];
    fmt::print(out, "        read  {:<5} @ {:#011x} = {:#018x}\n", level_name(mode, ref.level),
               ref.entry_pa, ref.value);
  }
  if (r.outcome == WalkOutcome::kNonCanonical) {
    fmt::print(out, "        => #GP (non-canonical address)\n");
    return;
  }
  if (!r.ok()) {
    fmt::print(out, "        => #PF error code {:#x} ({}) at the {}\n", r.error_code,
               describe_error_code(r.error_code), level_name(mode, r.stop_level));
    return;
  }
  for (uint8_t i = 0; i < r.update_count; ++i) {
    const EntryWrite& u = r.updates[i];
    fmt::print(out, "        set   {:<5} @ {:#011x} : {:#x} -> {:#x}\n",
               level_name(mode, u.level), u.entry_pa, u.old_value, u.new_value);
  }
  const Translation& t = r.translation;
  fmt::print(out, "        => PA {:#x}  {} page  {}{}{}{}\n", t.pa, to_string(t.size),
             t.rights.writable ? "W" : "R", t.rights.user ? "U" : "S",
             t.rights.execute_disable ? " XD" : "", t.global ? " G" : "");
}

void demo_mode(std::ostream& out, PagingMode mode) {
  PagingControls controls;  // WP, PSE, PGE, NXE on
  GuestMemory memory(64ULL << 20);
  FrameAllocator frames(/*first_frame=*/256, /*frame_count=*/(64ULL << 20) / kPageSize - 256);
  DirectPageTableStore store(memory);
  PageTableEditor editor(mode, controls, CpuFeatures{}, frames, store);

  const uint64_t root = editor.create_address_space();
  const bool ia32e = mode == PagingMode::k4Level || mode == PagingMode::k5Level;
  const uint64_t kernel = editor.kernel_base();
  const PageSize large = mode == PagingMode::k32Bit ? PageSize::k4M : PageSize::k2M;

  PageFlags text;  // user code: read-only, executable
  text.user = true;
  PageFlags data;  // user data: writable, not executable where XD exists
  data.user = data.writable = true;
  data.execute_disable = mode != PagingMode::k32Bit;
  PageFlags direct_map;  // kernel direct map: large, writable, global
  direct_map.writable = direct_map.global = true;
  direct_map.accessed = direct_map.dirty = true;

  editor.map(root, 0x400000, 0x1000000, 2 * kPageSize, PageSize::k4K, text);
  editor.map(root, 0x600000, 0x1200000, kPageSize, PageSize::k4K, data);
  editor.map(root, kernel, 0, page_bytes(large), large, direct_map);

  PagingState state(mode, controls);
  state.load_cr3(root, memory);
  fmt::print(out, "{} paging: CR3 {:#x}, {} table pages, {} entry writes to build\n",
             to_string(mode), root, frames.allocated_count(), store.writes.size());

  std::vector<DemoAccess> accesses = {
      {0x400123, Access::fetch(true), "user code"},
      {0x600010, Access::write(true), "user data, first write: sets A and D"},
      {0x600010, Access::fetch(true), "fetch from data page"},
      {0x401000, Access::write(true), "write to read-only code"},
      {kernel + 0x5000, Access::read(false), "kernel direct map"},
      {kernel + 0x5000, Access::read(true), "user read of kernel memory"},
      {0x800000, Access::read(true), "unmapped"},
  };
  if (ia32e) accesses.push_back({0x0000900000000000ULL, Access::read(true), "non-canonical"});
  for (const DemoAccess& d : accesses) {
    const WalkResult r = walk(memory, state, d.va, d.access);
    print_walk(out, mode, d, r);
    apply_updates(memory, r);
  }
  out << '\n';
}

}  // namespace

int run_walk_demo(std::ostream& out) {
  for (PagingMode mode :
       {PagingMode::k32Bit, PagingMode::kPae, PagingMode::k4Level, PagingMode::k5Level}) {
    demo_mode(out, mode);
  }
  return 0;
}

}  // namespace shadowsim
