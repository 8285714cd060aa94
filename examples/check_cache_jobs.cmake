# Runs cache_jobs and checks its refresh counts loosely (timing varies on a loaded machine):
# both caches were refreshed, the fast one (50 ms ticker) more often than the slow one (300 ms),
# and the loop was stopped by the context's deadline.
#
#   cmake -DPROG=<cache_jobs executable> [-DARGS="<args>"] -P check_cache_jobs.cmake
cmake_minimum_required(VERSION 3.25)

if(NOT DEFINED PROG)
  message(FATAL_ERROR "usage: cmake -DPROG=<exe> [-DARGS=<args>] -P check_cache_jobs.cmake")
endif()

separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(
  COMMAND "${PROG}" ${args}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  TIMEOUT 50)
set(report "exit status: ${rc}\n--- stdout ---\n${out}\n--- stderr ---\n${err}")

if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "expected exit status 0\n${report}")
endif()
if(NOT out MATCHES "fast cache \\([a-z]+, every 50 ms\\) refreshed ([0-9]+) times")
  message(FATAL_ERROR "no fast cache count in the output\n${report}")
endif()
set(fast ${CMAKE_MATCH_1})
if(NOT out MATCHES "slow cache \\([a-z]+, every 300 ms\\) refreshed ([0-9]+) times")
  message(FATAL_ERROR "no slow cache count in the output\n${report}")
endif()
set(slow ${CMAKE_MATCH_1})
if(NOT out MATCHES "stopped after [0-9]+ ms: context deadline exceeded")
  message(FATAL_ERROR "the loop was not stopped by the context's deadline\n${report}")
endif()

if(NOT slow GREATER 0 OR NOT fast GREATER slow)
  message(FATAL_ERROR "expected fast > slow > 0, got fast=${fast} slow=${slow}\n${report}")
endif()
message(STATUS "ok: fast=${fast} > slow=${slow} > 0")
