# cmake -DPYTHON=/usr/bin/python3 -DPACKAGE_DIR=build/python -P write_pth.cmake
# Writes <user site-packages of PYTHON>/shadowsim-build.pth containing PACKAGE_DIR.
execute_process(
  COMMAND "${PYTHON}" -c "import site; print(site.getusersitepackages())"
  OUTPUT_VARIABLE _site OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR _site STREQUAL "")
  message(FATAL_ERROR "${PYTHON} did not name its user site-packages folder")
endif()
file(MAKE_DIRECTORY "${_site}")
file(WRITE "${_site}/shadowsim-build.pth" "${PACKAGE_DIR}\n")
message(STATUS "${_site}/shadowsim-build.pth -> ${PACKAGE_DIR}")
