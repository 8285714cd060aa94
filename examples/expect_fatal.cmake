# Runs an example that must end in a goro fatal error and checks how it ended.
#
#   cmake -DPROG=<executable> [-DARGS="<args>"] -DEXPECT="<headline>[|<text>...]" -P expect_fatal.cmake
#
# Passes when the program exits with status 2 (as Go does on a fatal error) and its stderr
# contains the headline followed by a blank line (the contract: the headline, a blank line,
# then the goroutine dump), every further '|'-separated text, and "goroutine 1 [" (the main
# goroutine in the dump).
cmake_minimum_required(VERSION 3.25)

if(NOT DEFINED PROG OR NOT DEFINED EXPECT)
  message(FATAL_ERROR "usage: cmake -DPROG=<exe> [-DARGS=<args>] -DEXPECT=<text>[|<text>...] -P expect_fatal.cmake")
endif()

separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(
  COMMAND "${PROG}" ${args}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  TIMEOUT 50)

set(report "command: ${PROG} ${ARGS}\nexit status: ${rc}\n--- stdout ---\n${out}\n--- stderr ---\n${err}")
if(NOT rc STREQUAL "2")
  message(FATAL_ERROR "expected exit status 2, got '${rc}'\n${report}")
endif()

# Split EXPECT on '|' by hand: a CMake list would mishandle the '[' of texts like "[chan send".
set(rest "${EXPECT}")
set(expected_texts "")
set(first TRUE)
while(TRUE)
  string(FIND "${rest}" "|" bar)
  if(bar EQUAL -1)
    set(text "${rest}")
  else()
    string(SUBSTRING "${rest}" 0 ${bar} text)
    math(EXPR after "${bar} + 1")
    string(SUBSTRING "${rest}" ${after} -1 rest)
  endif()
  if(first)
    set(text "${text}\n\n")  # the headline is followed by a blank line
    set(first FALSE)
  endif()
  string(FIND "${err}" "${text}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "stderr lacks the expected text '${text}'\n${report}")
  endif()
  if(bar EQUAL -1)
    break()
  endif()
endwhile()

string(FIND "${err}" "goroutine 1 [" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "stderr lacks the dump of the main goroutine ('goroutine 1 [')\n${report}")
endif()
message(STATUS "ok: exit status 2 and the expected fatal error with a goroutine dump")
