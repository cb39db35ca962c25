// The host side of one VM under nested paging (Intel EPT / AMD NPT): what the hypervisor sets up
// once, before the guest runs, and every PCPU's MMU then walks through (docs/nested.md,
// "Integration"; models/mmu/mmu.h).
//
// Host-physical layout (one host memory, indexed by host-physical address):
//   [0, guest RAM)                guest RAM, identity-mapped: gPA x is hPA x;
//   [table_base, + table bytes)   the host page tables, table_base = guest RAM rounded up to
//                                 1 GiB (a fresh 1 GiB region above RAM, so no table frame ever
//                                 aliases a guest line).
// The guest's bytes themselves stay in the guest's GuestMemory (gPA-indexed, as everywhere in the
// simulator); the host memory holds only the host tables (it is a MAP_NORESERVE reservation, so
// the unused RAM part costs nothing).
//
// Why identity: (1) the page-table memory model (one cache model per machine, indexed by
// address) can then be fed host-physical addresses for every reference of a 2-D walk — guest
// table lines keep the addresses (so the cache sets) they have natively, host table lines are
// distinct lines above RAM, and both compete in the same per-PCPU L1D/L2 and the shared LLC;
// (2) the rest of the simulator (the VCPU's kernel accesses, the TLB audit, the guest kernel's
// PTE stores costed at their gPA) compares and costs guest-physical addresses, and the MMU's
// host-physical result equals them. A fixed non-zero offset would need MmuResult to carry the
// gPA as well; it is not offered.
//
// Guest RAM is mapped with the largest host page (`page_size`) where it fits and smaller pages
// for a tail that does not fill one (as KVM maps the largest page the backing allows), R/W/X,
// write-back, A/D clear. The hypervisor maps all guest RAM up front, so any host fault in a walk
// is a model bug (the MMU raises Error).
#pragma once

#include <cstdint>

#include "common/params.h"
#include "nested/host_paging.h"
#include "nested/host_table_builder.h"
#include "nested/nested_walker.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/paging_types.h"

namespace shadowsim {

// The config's hypervisor.nested group.
struct NestedHostParams {
  // Default EPT: the project's default machine is an Intel Skylake core (docs/tlb.md,
  // docs/memory.md); NPT is the AMD alternative.
  HostPagingKind kind = HostPagingKind::kEpt;
  // Default 2 MiB: KVM maps guest RAM with the largest page its host backing has
  // (host_pfn_mapping_level, arch/x86/kvm/mmu/mmu.c), and transparent huge pages, on by default
  // in the common distributions, give 2 MiB; 1 GiB needs hugetlbfs pages reserved at boot, and
  // 4 KiB is what a host without THP (or with dirty logging) gives.
  PageSize page_size = PageSize::k2M;
  // Default on: KVM enables EPT A/D whenever the CPU has it (module parameter eptad,
  // enable_ept_ad_bits = 1 in arch/x86/kvm/vmx/vmx.c); Skylake has it. Ignored under NPT, whose
  // A/D bits are always set by the walk.
  bool ept_ad = true;
  // Host physical-address width (assumption: 46, as the guest default, CpuFeatures in
  // paging/paging_types.h). Guest RAM and the host tables must fit below it.
  unsigned maxphyaddr = 46;
  NestedParams caches;  // per-PCPU nested TLB and 2-D paging-structure caches (defaults there)

  template <class V>
  void visit(V& v) {
    v.choice("kind", kind, "nested paging format: Intel EPT or AMD NPT",
             {{"ept", HostPagingKind::kEpt}, {"npt", HostPagingKind::kNpt}});
    v.choice("page_size", page_size,
             "host page size mapping guest RAM (a tail that does not fill one uses smaller pages)",
             {{"4k", PageSize::k4K}, {"2m", PageSize::k2M}, {"1g", PageSize::k1G}});
    v.value("ept_ad", ept_ad, "EPT accessed/dirty flags enabled (EPTP bit 6); ignored under NPT");
    v.value("maxphyaddr", maxphyaddr, "host physical-address width", Limits{32, 52}, "bits");
    v.group("caches", caches, "per-PCPU caches of the 2-D walk");
  }
  void validate() const;

  // The host table format these parameters give (1 GiB pages and execute-only entries
  // supported, host EFER.NXE set).
  HostPagingParams host_paging() const;
};

class NestedHost {
 public:
  // Builds the host tables for all of `guest` (its size is the guest RAM). Keeps a reference to
  // `guest`: the MMUs check they were given the same memory. Throws ParamError on bad params and
  // Error when guest RAM and the host tables do not fit below the host MAXPHYADDR.
  NestedHost(const GuestMemory& guest, const NestedHostParams& params);
  NestedHost(const NestedHost&) = delete;
  NestedHost& operator=(const NestedHost&) = delete;

  const NestedHostParams& params() const { return params_; }
  HostPagingKind kind() const { return params_.kind; }
  const GuestMemory& guest_memory() const { return guest_; }
  // What a 2-D walk reads (host tables) and where its host A/D updates are written.
  const HostPageTables& tables() const { return tables_; }
  GuestMemory& host_memory() { return host_memory_; }
  const GuestMemory& host_memory() const { return host_memory_; }
  // For a hypervisor (or a test) that changes the host tables; after a change every MMU of the
  // VM must drop what it cached (NestedWalker::invept(root) and a TLB flush of the VM's VPID).
  HostTableBuilder& builder() { return builder_; }
  uint64_t root() const { return tables_.root(); }

  // Identity map: the host-physical address of guest-physical `gpa`.
  static uint64_t hpa_of(uint64_t gpa) { return gpa; }
  uint64_t table_base() const { return table_base_; }  // first host-physical byte of the tables
  uint64_t table_frames() const { return builder_.table_frames(); }

 private:
  void map_guest_ram();

  const GuestMemory& guest_;
  NestedHostParams params_;
  uint64_t table_base_;
  GuestMemory host_memory_;
  FrameAllocator host_frames_;
  HostTableBuilder builder_;
  HostPageTables tables_;
};

}  // namespace shadowsim
