# Fails when the output of COMMAND differs from FILE (a generated doc that must not drift).
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out)
file(READ "${FILE}" expected)
if(NOT rc EQUAL 0 OR NOT out STREQUAL expected)
  message(FATAL_ERROR "${FILE} is out of date: regenerate it with\n  ${COMMAND} > ${FILE}")
endif()
