# End-to-end tests (label "e2e"): the real `groundmist-sync serve` on 127.0.0.1 against
# real npm automerge-repo clients (2.5.6 with automerge 3.5.0 from tests/interop, 1.2.1
# with automerge 2.2.8 from tests/interop/repo1; `make npm` / scripts/install-npm.sh
# installs both). One ctest per tests/e2e/*.test.mjs, run with node's test runner; each
# test starts its own server on a free port with a temporary data folder.
# GM_E2E_SERVER=js runs the same tests against the JS reference server instead.
#
# In the sanitizer run (GM_SANITIZER_RUN, build-asan) the suites of restarts and
# kill -9, bad input, stress, disk and file faults, slow readers, limits, the JSON API,
# grants over WebSocket, event streams and TLS (request parsing, lookups and routing
# across groups, streamed responses, handshakes) run against the ASan + UBSan program
# instead (label "e2e-asan", ctest e2e_asan_<name>; a fault.test.mjs would join them). tests/e2e/lib/server.mjs fails a test whose server
# printed a sanitizer report; waits are scaled by GM_E2E_TIME_SCALE.
if(TARGET groundmist-sync)
  find_program(GM_NODE node)
  if(GM_NODE)
    file(GLOB e2e_test_files CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/e2e/*.test.mjs)
    if(GM_SANITIZER_RUN)
      list(FILTER e2e_test_files INCLUDE REGEX
           "/(restart|badinput|stress|diskfull|fault|corruption|slowreader|limits|api|grants|events|tls|console_api|console_oauth)\\.test\\.mjs$")
      set(e2e_prefix e2e_asan_)
      set(e2e_label e2e-asan)
      # Against the ASan build (Debug, -O0) these suites took 1.2 to 3.2 times as long
      # as against the RelWithDebInfo one (2-core machine, 2026-12-07), but the
      # server's own work far longer: refusing badinput's 120000-change document took
      # 1.3 s instead of 0.09, and over 4.5 s on a busy machine. Waits are 5 times
      # as long; the slowest file took 31-41 s. (At -O1 the server would be faster,
      # but the build took over half as long again as at -O0.)
      set(e2e_time_scale 5)
      set(e2e_timeout 300)
    else()
      set(e2e_prefix e2e_)
      set(e2e_label e2e)
      set(e2e_time_scale 1)
      set(e2e_timeout 150)
    endif()
    foreach(file ${e2e_test_files})
      get_filename_component(name ${file} NAME)
      string(REPLACE ".test.mjs" "" name ${name})
      add_test(NAME ${e2e_prefix}${name}
               COMMAND ${GM_NODE} --test --test-force-exit --test-reporter=spec ${file}
               WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/e2e)
      set_tests_properties(${e2e_prefix}${name} PROPERTIES
                           LABELS ${e2e_label}
                           TIMEOUT ${e2e_timeout}
                           ENVIRONMENT "GM_SYNC_BIN=$<TARGET_FILE:groundmist-sync>;GM_SHARED_DIR=${GM_SHARED_DIR};GM_E2E_TIME_SCALE=${e2e_time_scale}")
    endforeach()
  endif()
endif()
