# Storage and engine facts checked against the JS reference (issue 13).
# Compaction under injected disk faults leaves folders the JS reference reads
# (issue 13): group_repo_fault_test keeps the folder of every fault case
# (GM_FAULT_KEEP), then tools/load_folders.mjs loads each with automerge-repo 2.5.6's
# NodeFSStorageAdapter and checks its heads.
find_program(GM_FAULT_NODE node)
if(GM_FAULT_NODE AND TARGET group_repo_fault_test)
  set(keep ${CMAKE_CURRENT_BINARY_DIR}/fault-folders)
  add_test(NAME interop_fault_folders
           COMMAND bash -c "rm -rf '${keep}' && mkdir -p '${keep}' && GM_FAULT_KEEP='${keep}' \"$0\" --gtest_filter='*Compacting*' >/dev/null && '${GM_FAULT_NODE}' tools/load_folders.mjs '${keep}'"
                   $<TARGET_FILE:group_repo_fault_test>
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/interop)
  set_tests_properties(interop_fault_folders PROPERTIES LABELS interop TIMEOUT 120)
endif()

# The documents the engine refuses (src/automerge/testdata/refused_*) are the ones npm
# 3.5.0 refuses too.
if(GM_FAULT_NODE)
  add_test(NAME interop_refused_fixtures
           COMMAND ${GM_FAULT_NODE} tools/refused_fixtures.mjs --check ${PROJECT_SOURCE_DIR}/src/automerge/testdata
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/interop)
  set_tests_properties(interop_refused_fixtures PROPERTIES LABELS interop TIMEOUT 60)
endif()
