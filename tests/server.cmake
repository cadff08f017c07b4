# End-to-end tests of the server part (label "e2e"), loopback only:
#  - server_e2e_test: an in-process Server with a test handler, driven by Beast clients;
#  - server_serve_e2e: the real `groundmist-sync serve` driven by node (`ws`, fetch).
if(TARGET gm_server)
  find_package(nlohmann_json REQUIRED)
  add_executable(server_e2e_test ${CMAKE_CURRENT_LIST_DIR}/server/server_e2e_test.cc)
  target_link_libraries(server_e2e_test PRIVATE gm_server nlohmann_json::nlohmann_json GTest::gtest_main)
  gtest_discover_tests(server_e2e_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS e2e TIMEOUT 60)

  add_test(NAME server_serve_e2e
           COMMAND node ${CMAKE_CURRENT_LIST_DIR}/server/serve_e2e.mjs $<TARGET_FILE:groundmist-sync>
           WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/interop)
  set_tests_properties(server_serve_e2e PROPERTIES LABELS e2e TIMEOUT 120)
endif()
