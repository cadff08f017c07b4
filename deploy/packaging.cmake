# Installing and packaging (`make package`: a .deb by CPack's DEB generator; docs/deploy.md).
#
#   /usr/bin/groundmist-sync                           the program (stripped)
#   /lib/systemd/system/groundmist-sync.service        the hardened unit (deploy/)
#   /etc/groundmist-sync/groundmist-sync.conf          its settings, a conffile, 0640 (it
#                                                      may hold the session-token secret)
#   /usr/share/doc/groundmist-sync/                    deploy.md, examples/Caddyfile
#
# The maintainer scripts (deploy/debian/) create the groundmist-sync system user and
# /var/lib/groundmist-sync (0700), and enable the service. Depends: what dpkg-shlibdeps
# finds the program linked against (the list below where it is missing), adduser for the
# user, ca-certificates for the HTTPS calls to the PLC directory and PDSes.
# tests/package.cmake builds the package and checks it, and installs it in a throwaway
# root.
set(GM_DEPLOY_DIR ${CMAKE_CURRENT_LIST_DIR})

install(TARGETS groundmist-sync RUNTIME DESTINATION bin)
install(FILES ${GM_DEPLOY_DIR}/groundmist-sync.service DESTINATION /lib/systemd/system)
install(FILES ${GM_DEPLOY_DIR}/groundmist-sync.conf DESTINATION /etc/groundmist-sync
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${PROJECT_SOURCE_DIR}/docs/deploy.md DESTINATION share/doc/groundmist-sync)
install(FILES ${GM_DEPLOY_DIR}/Caddyfile DESTINATION share/doc/groundmist-sync/examples)

set(GM_PACKAGE_CONTACT "Groundmist Sync maintainers <maintainers@groundmist-sync.invalid>"
    CACHE STRING "The .deb's Maintainer field")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME groundmist-sync)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${GM_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "personal sync server for local-first apps (automerge-repo, atproto)")
set(CPACK_PACKAGE_DESCRIPTION
    "Groundmist Sync stores the Automerge documents of one person's local-first apps,
each app's under its Lexicon NSID group, and syncs them over WebSocket with the
automerge-repo protocol. It is linked to its owner's AT Protocol identity (a DID):
apps find it through the owner's atproto record and prove they act for the owner.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS caddy)
find_program(GM_DPKG_SHLIBDEPS dpkg-shlibdeps)
find_program(GM_FILE_PROGRAM file)  # CPack's shlibdeps step needs it to find the ELF files
if(GM_DPKG_SHLIBDEPS AND GM_FILE_PROGRAM)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, ca-certificates")
else()
  # Debian 12's names for what the program links (ldd build/groundmist-sync).
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "adduser, ca-certificates, libc6, libstdc++6, libgcc-s1, libssl3, libcurl4, libsqlite3-0, libdeflate0, libcbor0.8, libspdlog1.10, libfmt9")
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${GM_DEPLOY_DIR}/debian/postinst ${GM_DEPLOY_DIR}/debian/prerm ${GM_DEPLOY_DIR}/debian/postrm
    ${GM_DEPLOY_DIR}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
