# export subcommand (harness/cli/export_cmd.*), built on the exporter library.
target_sources(backlog_lab_cli PRIVATE ${CMAKE_CURRENT_LIST_DIR}/export_cmd.cpp)
target_link_libraries(backlog_lab_cli PUBLIC backlog_lab::exporter)
