# doctor subcommand (harness/cli/doctor_cmd.*), built on the doctor library.
target_sources(backlog_lab_cli PRIVATE ${CMAKE_CURRENT_LIST_DIR}/doctor_cmd.cpp)
target_link_libraries(backlog_lab_cli PUBLIC backlog_lab::doctor)
