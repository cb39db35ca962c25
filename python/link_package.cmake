# include()d by python/CMakeLists.txt with SRC and DST set, or by hand:
#   cmake -DSRC=python/shadowsim -DDST=build/python/shadowsim -P link_package.cmake
# Mirrors SRC into DST as symbolic links (one per file, sub-folders recreated), leaving files
# that are not links (the compiled extension, __pycache__) alone, and removes links whose
# source file is gone.
file(GLOB_RECURSE _files LIST_DIRECTORIES false RELATIVE "${SRC}" "${SRC}/*")
file(MAKE_DIRECTORY "${DST}")
foreach(_f IN LISTS _files)
  if(_f MATCHES "(^|/)__pycache__/" OR _f MATCHES "\\.pyc$")
    continue()
  endif()
  get_filename_component(_dir "${DST}/${_f}" DIRECTORY)
  file(MAKE_DIRECTORY "${_dir}")
  if(IS_SYMLINK "${DST}/${_f}")
    file(READ_SYMLINK "${DST}/${_f}" _target)
    if(_target STREQUAL "${SRC}/${_f}")
      continue()
    endif()
  endif()
  file(REMOVE "${DST}/${_f}")
  file(CREATE_LINK "${SRC}/${_f}" "${DST}/${_f}" SYMBOLIC)
endforeach()
file(GLOB_RECURSE _links LIST_DIRECTORIES false "${DST}/*")
foreach(_l IN LISTS _links)
  if(IS_SYMLINK "${_l}" AND NOT EXISTS "${_l}")
    file(REMOVE "${_l}")
  endif()
endforeach()
