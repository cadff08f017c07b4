# --- Differential test against npm Automerge 3.5.0 / 2.2.8 (owner: differential helper)
# differential_test (tests/differential_test.cc) checks the engine against a corpus of
# randomized documents that tests/interop/gen_corpus.mjs makes with the real npm
# packages. Three ctests, label "interop", run in this order:
#   interop_differential_corpus    generates the corpus into <build>/differential_corpus
#                                  (fixed seeds: 3.5.0 seed 1, 2.2.8 seed 2, 120 each)
#   interop_differential           the C++ checks; also writes <id>.cpp.save files
#   interop_differential_npm_load  npm loads every <id>.cpp.save and checks heads,
#                                  change hashes and JSON (tests/interop/lib/check_saves.mjs)
# Larger local run (any folder, any seed):
#   node tests/interop/gen_corpus.mjs /tmp/corpus/v3 --seed 7 --count 1000 --version 3 --large
#   GM_CORPUS_DIR=/tmp/corpus <build>/tests/differential_test
#   node tests/interop/lib/check_saves.mjs /tmp/corpus     (run from tests/interop)
add_executable(differential_test ${CMAKE_CURRENT_SOURCE_DIR}/differential_test.cc)
target_link_libraries(differential_test PRIVATE gm_automerge GTest::gtest_main)

find_program(NODE_EXECUTABLE node)
if(NODE_EXECUTABLE)
  set(gm_diff_corpus ${CMAKE_CURRENT_BINARY_DIR}/differential_corpus)
  set(gm_diff_count 120)
  add_test(NAME interop_differential_corpus
           COMMAND sh -c "rm -rf '${gm_diff_corpus}' && \
'${NODE_EXECUTABLE}' gen_corpus.mjs '${gm_diff_corpus}/v3' --seed 1 --count ${gm_diff_count} --version 3 && \
'${NODE_EXECUTABLE}' gen_corpus.mjs '${gm_diff_corpus}/v2' --seed 2 --count ${gm_diff_count} --version 2"
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/interop)
  set_tests_properties(interop_differential_corpus PROPERTIES
                       LABELS interop TIMEOUT 600 FIXTURES_SETUP differential_corpus)

  add_test(NAME interop_differential COMMAND differential_test)
  set_tests_properties(interop_differential PROPERTIES
                       LABELS interop TIMEOUT 900
                       ENVIRONMENT "GM_CORPUS_DIR=${gm_diff_corpus}"
                       FIXTURES_REQUIRED differential_corpus)

  # Needs the .cpp.save files interop_differential writes (DEPENDS orders the two but
  # still runs this one when some C++ check failed: the npm side is independent).
  add_test(NAME interop_differential_npm_load
           COMMAND ${NODE_EXECUTABLE} lib/check_saves.mjs ${gm_diff_corpus} --suffix .cpp.save
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/interop)
  set_tests_properties(interop_differential_npm_load PROPERTIES
                       LABELS interop TIMEOUT 600
                       DEPENDS interop_differential
                       FIXTURES_REQUIRED differential_corpus)
endif()
# --- end differential test --------------------------------------------------------
