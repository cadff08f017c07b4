# The .deb (`make package`, deploy/packaging.cmake), label "package":
#   package_deb      builds it with CPack and checks it unpacked: files, modes, conffile,
#                    Depends, maintainer scripts, the program it carries, the unit
#                    (systemd-analyze verify and security), the conf, the Caddyfile and
#                    deploy/Dockerfile against the program and each other (no image is
#                    built: CI has no Docker daemon)
#   package_install  installs it with dpkg in a throwaway root (an overlay of this
#                    machine's root in a private mount namespace) and runs the server as
#                    the unit would; skipped where that cannot be made (not root)
# About 5 s each.
if(TARGET groundmist-sync)
  find_program(GM_DPKG_DEB dpkg-deb)
  if(GM_DPKG_DEB)
    set(package_out ${PROJECT_BINARY_DIR}/package-test)
    add_test(NAME package_deb
             COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/package/check-deb.sh ${CMAKE_CPACK_COMMAND}
                     ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${package_out} ${PROJECT_VERSION})
    set_tests_properties(package_deb PROPERTIES LABELS package TIMEOUT 120 FIXTURES_SETUP deb_package)
    add_test(NAME package_install COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/package/install-deb.sh ${package_out})
    set_tests_properties(package_install PROPERTIES LABELS package TIMEOUT 120 SKIP_RETURN_CODE 77
                         FIXTURES_REQUIRED deb_package)
  endif()
endif()
