# --- Sync protocol interop (owner: sync helper) ---------------------------------
# sync_peer: a C++ sync peer over stdin/stdout on ChangeGraph alone; the test drives
# it against the real npm @automerge/automerge 3.5.0 and 2.2.8 (package automerge-2).
add_executable(sync_peer ${CMAKE_CURRENT_SOURCE_DIR}/sync_peer.cc)
target_link_libraries(sync_peer PRIVATE gm_am_sync)
find_program(NODE_EXECUTABLE node)
if(NODE_EXECUTABLE)
  add_test(NAME interop_sync_converge
           COMMAND ${NODE_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/interop/sync_converge.mjs $<TARGET_FILE:sync_peer>
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/interop)
  set_tests_properties(interop_sync_converge PROPERTIES LABELS interop TIMEOUT 600)
endif()
# --- end sync protocol interop ---------------------------------------------------
