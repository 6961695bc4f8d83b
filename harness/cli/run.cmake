# run subcommand and the composed command line.
target_sources(backlog_lab_cli PRIVATE ${CMAKE_CURRENT_LIST_DIR}/app.cpp
  ${CMAKE_CURRENT_LIST_DIR}/run_cmd.cpp ${CMAKE_CURRENT_LIST_DIR}/signals.cpp)
target_link_libraries(backlog_lab_cli PUBLIC backlog_lab::report backlog_lab::runner
  backlog_lab::scenario backlog_lab::scenarios)
