# Compares two stats.json files, ignoring the "host" object (wall time, host speed).
#   cmake -DA=a/stats.json -DB=b/stats.json -P same_stats.cmake
file(READ "${A}" a)
file(READ "${B}" b)
string(JSON a REMOVE "${a}" host)
string(JSON b REMOVE "${b}" host)
if(NOT a STREQUAL b)
  message(FATAL_ERROR "${A} and ${B} differ beyond the host fields")
endif()
string(JSON refs GET "${a}" roi references)
message(STATUS "identical statistics (${refs} references)")
