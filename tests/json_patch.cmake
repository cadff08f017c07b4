# --- JSON Patch authoring against npm (issue 14) -----------------------------------
# json_patch_tool (tests/json_patch_tool.cc) applies a JSON Patch to a saved document
# as one change, or prints the JSON view at given heads; json_patch_diff.mjs checks
# it against npm @automerge/automerge 3.5.0 and fast-json-patch 3.1.2 on seeded
# random documents and patches, a concurrent text edit, and view(doc, heads).
# Larger local run:
#   cd tests/interop && node json_patch_diff.mjs <build>/tests/json_patch_tool --seed 7 --count 2000
add_executable(json_patch_tool ${CMAKE_CURRENT_SOURCE_DIR}/json_patch_tool.cc)
target_link_libraries(json_patch_tool PRIVATE gm_am_json_patch)
find_program(NODE_EXECUTABLE node)
if(NODE_EXECUTABLE)
  add_test(NAME interop_json_patch
           COMMAND ${NODE_EXECUTABLE} json_patch_diff.mjs $<TARGET_FILE:json_patch_tool> --seed 1 --count 300
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/interop)
  set_tests_properties(interop_json_patch PROPERTIES LABELS interop TIMEOUT 600)
endif()
# --- end JSON Patch authoring ------------------------------------------------------
