# Trace decoding benchmark (records/s, binary and zstd), included by bench/CMakeLists.txt.
add_executable(bench_trace ${CMAKE_CURRENT_LIST_DIR}/bench_trace.cpp)
target_link_libraries(bench_trace PRIVATE shadowsim_workloads benchmark::benchmark)
target_compile_definitions(bench_trace PRIVATE
  SHADOWSIM_TRACES_DIR="${PROJECT_SOURCE_DIR}/workloads/traces")
