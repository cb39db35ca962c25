# TLB and paging-structure-cache benchmarks (docs/tlb.md, docs/performance.md): the cost of an
# L1 hit, an STLB hit, a miss + fill, and the whole miss path with the PSCs and the walker.
add_executable(bench_tlb ${CMAKE_CURRENT_LIST_DIR}/bench_tlb.cpp)
target_link_libraries(bench_tlb PRIVATE shadowsim_tlb benchmark::benchmark)
