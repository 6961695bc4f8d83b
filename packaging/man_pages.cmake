# Writes backlog-lab.1 and one page per subcommand into OUT_DIR, from the binary's own --help
# (help2man), so the pages cannot drift from the CLI. Run as:
#   cmake -DBINARY=path/backlog-lab -DOUT_DIR=dir -P man_pages.cmake
if(NOT BINARY OR NOT OUT_DIR)
  message(FATAL_ERROR "man_pages.cmake: set BINARY and OUT_DIR")
endif()
find_program(HELP2MAN help2man REQUIRED)
file(MAKE_DIRECTORY "${OUT_DIR}")

execute_process(COMMAND "${BINARY}" --help OUTPUT_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "man_pages.cmake: ${BINARY} --help failed (${rc})")
endif()
# The subcommands are the two-space-indented names after "Subcommands:".
string(FIND "${top}" "Subcommands:" at)
string(SUBSTRING "${top}" ${at} -1 listing)
string(REGEX MATCHALL "\n  ([a-z][a-z-]*) " lines "${listing}")
set(subcommands "")
foreach(line IN LISTS lines)
  string(STRIP "${line}" name)
  list(APPEND subcommands "${name}")
endforeach()
if(NOT subcommands)
  message(FATAL_ERROR "man_pages.cmake: no subcommands in ${BINARY} --help")
endif()

set(see_also "")
foreach(sub IN LISTS subcommands)
  string(APPEND see_also ".BR backlog-lab-${sub} (1),\n")
endforeach()
file(WRITE "${OUT_DIR}/see-also.h2m"
  "[SEE ALSO]\n${see_also}.BR ss (8),\n.BR nstat (8),\n.BR iptables (8)\n\n"
  "The scenario format, the JSON formats and their schemas are in /usr/share/doc/backlog-lab.\n")

function(make_page name help_option description)
  execute_process(
    COMMAND "${HELP2MAN}" --no-info --no-discard-stderr --section=1 "--name=${description}"
            "--help-option=${help_option}" --version-option=--version
            "--include=${OUT_DIR}/see-also.h2m" "--output=${OUT_DIR}/${name}.1" "${BINARY}"
    RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "man_pages.cmake: help2man for ${name} failed: ${err}")
  endif()
  # help2man titles every page after the binary; a subcommand's page carries its own name.
  string(TOUPPER "${name}" title)
  file(READ "${OUT_DIR}/${name}.1" page)
  string(REGEX REPLACE "\n\\.TH BACKLOG-LAB " "\n.TH ${title} " page "${page}")
  string(REPLACE ".SH NAME\nbacklog-lab \\-" ".SH NAME\n${name} \\-" page "${page}")
  # The build directory's path in the synopsis would mean nothing once installed.
  string(REPLACE "${BINARY}" "backlog-lab" page "${page}")
  file(WRITE "${OUT_DIR}/${name}.1" "${page}")
endfunction()

make_page(backlog-lab --help "reproduce TCP accept-queue incidents on a real kernel")
foreach(sub IN LISTS subcommands)
  string(FIND "${listing}" "\n  ${sub} " start)
  string(SUBSTRING "${listing}" ${start} -1 rest)
  string(REGEX MATCH "\n  ${sub} +([^\n]*)" _ "${rest}")
  set(description "${CMAKE_MATCH_1}")
  string(REGEX REPLACE "[.;(].*" "" description "${description}")
  string(STRIP "${description}" description)
  make_page(backlog-lab-${sub} "${sub} --help" "${description}")
endforeach()
file(REMOVE "${OUT_DIR}/see-also.h2m")
file(WRITE "${OUT_DIR}/subcommands.txt" "${subcommands}")
