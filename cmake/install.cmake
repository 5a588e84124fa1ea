# Install rules, CMake package, pkg-config file and the Debian package (CPack).
# Everything installed is relocatable: the CMake files and perfbuf.pc find the
# prefix from their own location, so a package unpacked anywhere still works.
include(CMakePackageConfigHelpers)

set(PERFBUF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/perfbuf)

install(TARGETS perfbuf perfbuf_static EXPORT perfbufTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/perfbuf
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")  # not the mutation lists kept beside the headers
install(EXPORT perfbufTargets NAMESPACE perfbuf:: DESTINATION ${PERFBUF_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/perfbufConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/perfbufConfig.cmake
                              INSTALL_DESTINATION ${PERFBUF_CMAKE_DIR}
                              PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
# Before 1.0 only the same minor version is compatible (see the soname).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/perfbufConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/perfbufConfig.cmake
              ${PROJECT_BINARY_DIR}/perfbufConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/perfbufBpf.cmake
        DESTINATION ${PERFBUF_CMAKE_DIR})

# pkg-config: the prefix relative to the .pc file's own folder.
file(RELATIVE_PATH PERFBUF_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_LIST_DIR}/perfbuf.pc.in ${PROJECT_BINARY_DIR}/perfbuf.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/perfbuf.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# cpack -G DEB: one package with the libraries, headers, CMake files and the BPF
# helper. Only at top level: a parent project's CPack settings are its own.
if(NOT PERFBUF_TOP_LEVEL)
  return()
endif()
set(CPACK_PACKAGE_NAME libperfbuf-dev)
set(CPACK_PACKAGE_VENDOR perfbuf)
set(CPACK_PACKAGE_CONTACT "perfbuf maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "perfbuf: C++20 and C library reading BPF perf event array rings")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # libc, libstdc++, libbpf from the .so itself
# perfbuf's headers and perfbuf.pc refer to libbpf's.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libbpf-dev")
# perfbuf_add_bpf_skeleton() runs clang and bpftool.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "clang, bpftool, cmake, pkg-config")
include(CPack)
