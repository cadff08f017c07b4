# End-to-end tests (label "e2e"): the real `groundmist-sync serve` on 127.0.0.1 against
# real npm automerge-repo clients (2.5.6 with automerge 3.5.0 from tests/interop, 1.2.1
# with automerge 2.2.8 from tests/interop/repo1; `make npm` / scripts/install-npm.sh
# installs both). One ctest per tests/e2e/*.test.mjs, run with node's test runner; each
# test starts its own server on a free port with a temporary data folder.
# GM_E2E_SERVER=js runs the same tests against the JS reference server instead.
if(TARGET groundmist-sync)
  find_program(GM_NODE node)
  if(GM_NODE)
    file(GLOB e2e_test_files CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/e2e/*.test.mjs)
    foreach(file ${e2e_test_files})
      get_filename_component(name ${file} NAME)
      string(REPLACE ".test.mjs" "" name ${name})
      add_test(NAME e2e_${name}
               COMMAND ${GM_NODE} --test --test-force-exit --test-reporter=spec ${file}
               WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/e2e)
      set_tests_properties(e2e_${name} PROPERTIES
                           LABELS e2e
                           TIMEOUT 150
                           ENVIRONMENT "GM_SYNC_BIN=$<TARGET_FILE:groundmist-sync>;GM_SHARED_DIR=${GM_SHARED_DIR}")
    endforeach()
  endif()
endif()
