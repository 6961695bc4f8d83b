# observe subcommand (harness/cli/observe_command.*), built on the observer library.
target_sources(backlog_lab_cli PRIVATE ${CMAKE_CURRENT_LIST_DIR}/observe_command.cpp)
target_link_libraries(backlog_lab_cli PUBLIC backlog_lab::observer backlog_lab::demo)
