# sweep subcommand (harness/cli/sweep_cmd.*), built on the sweep library.
target_sources(backlog_lab_cli PRIVATE ${CMAKE_CURRENT_LIST_DIR}/sweep_cmd.cpp)
target_link_libraries(backlog_lab_cli PUBLIC backlog_lab::sweep)
