# check subcommand (harness/cli/check_cmd.*): the scenario reader alone, no lab.
target_sources(backlog_lab_cli PRIVATE ${CMAKE_CURRENT_LIST_DIR}/check_cmd.cpp)
target_link_libraries(backlog_lab_cli PUBLIC backlog_lab::scenario backlog_lab::scenarios)
