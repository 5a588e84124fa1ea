# perfbuf_add_bpf_skeleton(<name> <source.bpf.c>
#                          [INCLUDES dir...] [DEFINES def...] [VMLINUX])
#
# Compiles a BPF program with clang (-target bpf -g -O2) and generates its
# libbpf skeleton <name>.skel.h with bpftool, both in the calling folder's
# build folder (CMAKE_CURRENT_BINARY_DIR). Defines the INTERFACE target
# <name>_skel: link it to get that folder and the source's folder (headers
# shared by the program and user space) on the include path, libbpf linked,
# and the skeleton generated before your code compiles.
#
#   INCLUDES  more include folders for the BPF program (relative: to the
#             calling CMakeLists.txt)
#   DEFINES   preprocessor definitions for the BPF program (NAME or NAME=VALUE)
#   VMLINUX   generate vmlinux.h from the running kernel's BTF
#             (/sys/kernel/btf/vmlinux) into the same build folder, for
#             programs that #include "vmlinux.h" (CO-RE)
#
# Shipped with perfbuf: available after find_package(perfbuf) and after
# add_subdirectory() / FetchContent of perfbuf. Nothing here runs until the
# function is called, so projects that only use the library need neither clang
# nor bpftool.
include_guard(GLOBAL)

# <perfbuf/bpf.h> (the output helpers that count drops) for every program: the
# installed headers after find_package(perfbuf) (its config sets this), else
# the source tree's.
if(NOT PERFBUF_BPF_INCLUDE_DIR)
  get_filename_component(PERFBUF_BPF_INCLUDE_DIR "${CMAKE_CURRENT_LIST_DIR}/../include" ABSOLUTE)
endif()
set_property(GLOBAL PROPERTY PERFBUF_BPF_INCLUDE_DIR "${PERFBUF_BPF_INCLUDE_DIR}")

# The tools are looked up on first use and cached; set these to override.
function(_perfbuf_find_bpf_tools)
  find_program(PERFBUF_BPF_CLANG NAMES clang clang-16 clang-15 clang-14
               DOC "clang used to compile BPF programs")
  find_program(PERFBUF_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin
               DOC "bpftool used to generate BPF skeletons")
  find_path(PERFBUF_LIBBPF_INCLUDE_DIR bpf/bpf_helpers.h
            DOC "folder holding libbpf's bpf/bpf_helpers.h")
  foreach(what IN ITEMS
          "PERFBUF_BPF_CLANG|clang|clang"
          "PERFBUF_BPFTOOL|bpftool|bpftool"
          "PERFBUF_LIBBPF_INCLUDE_DIR|libbpf's headers (bpf/bpf_helpers.h)|libbpf-dev")
    string(REPLACE "|" ";" what "${what}")
    list(GET what 0 var)
    list(GET what 1 label)
    list(GET what 2 package)
    if(NOT ${var} OR NOT EXISTS "${${var}}")
      message(FATAL_ERROR
        "perfbuf_add_bpf_skeleton: ${label} not found (${var} = ${${var}}). Install it "
        "(Debian: apt-get install ${package}) or pass -D${var}=<path>.")
    endif()
  endforeach()
endfunction()

function(perfbuf_add_bpf_skeleton name source)
  cmake_parse_arguments(PARSE_ARGV 2 arg "VMLINUX" "" "INCLUDES;DEFINES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "perfbuf_add_bpf_skeleton(${name}): unknown arguments \"${arg_UNPARSED_ARGUMENTS}\"; "
      "usage: perfbuf_add_bpf_skeleton(<name> <source.bpf.c> [INCLUDES dir...] "
      "[DEFINES def...] [VMLINUX])")
  endif()
  # bpftool names the skeleton's struct and functions after it.
  if(NOT name MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR
      "perfbuf_add_bpf_skeleton: name \"${name}\" must be a C identifier "
      "(letters, digits, _): the skeleton's functions are named <name>__open() etc.")
  endif()
  get_filename_component(src "${source}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${src}")
    message(FATAL_ERROR "perfbuf_add_bpf_skeleton(${name}): source \"${src}\" does not exist")
  endif()
  get_filename_component(src_dir "${src}" DIRECTORY)
  _perfbuf_find_bpf_tools()

  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set(arch x86)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    set(arch arm64)
  else()
    set(arch ${CMAKE_SYSTEM_PROCESSOR})
  endif()

  set(out "${CMAKE_CURRENT_BINARY_DIR}")
  set(obj "${out}/${name}.bpf.o")
  set(skel "${out}/${name}.skel.h")
  set(flags -g -O2 -Wall -target bpf -D__TARGET_ARCH_${arch} -I${src_dir})
  foreach(dir IN LISTS arg_INCLUDES)
    get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND flags -I${dir})
  endforeach()
  foreach(def IN LISTS arg_DEFINES)
    list(APPEND flags -D${def})
  endforeach()
  get_property(perfbuf_include GLOBAL PROPERTY PERFBUF_BPF_INCLUDE_DIR)
  list(APPEND flags -I${perfbuf_include} -I${PERFBUF_LIBBPF_INCLUDE_DIR})
  # <linux/types.h> needs <asm/types.h>, which Debian keeps in the multiarch
  # folder that clang does not search for -target bpf.
  if(CMAKE_LIBRARY_ARCHITECTURE AND EXISTS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
    list(APPEND flags -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
  endif()

  set(extra_depends)
  if(arg_VMLINUX)
    if(NOT EXISTS /sys/kernel/btf/vmlinux)
      message(FATAL_ERROR
        "perfbuf_add_bpf_skeleton(${name} VMLINUX): /sys/kernel/btf/vmlinux does not exist: "
        "this kernel was built without CONFIG_DEBUG_INFO_BTF. Generate vmlinux.h on a machine "
        "that has it (bpftool btf dump file /sys/kernel/btf/vmlinux format c) and pass its "
        "folder with INCLUDES instead of VMLINUX.")
    endif()
    # One rule per build folder, shared by every skeleton of that folder.
    get_property(have_rule DIRECTORY PROPERTY PERFBUF_VMLINUX_RULE)
    if(NOT have_rule)
      add_custom_command(
        OUTPUT "${out}/vmlinux.h"
        COMMAND "${PERFBUF_BPFTOOL}" btf dump file /sys/kernel/btf/vmlinux format c
                > "${out}/vmlinux.h.tmp"
        COMMAND "${CMAKE_COMMAND}" -E rename "${out}/vmlinux.h.tmp" "${out}/vmlinux.h"
        COMMENT "vmlinux.h from the running kernel's BTF"
        VERBATIM)
      set_property(DIRECTORY PROPERTY PERFBUF_VMLINUX_RULE ON)
    endif()
    list(APPEND flags -I${out})
    list(APPEND extra_depends "${out}/vmlinux.h")
  endif()

  add_custom_command(
    OUTPUT "${obj}"
    COMMAND "${PERFBUF_BPF_CLANG}" ${flags} -MD -MF "${obj}.d" -c "${src}" -o "${obj}"
    DEPENDS "${src}" ${extra_depends}
    DEPFILE "${obj}.d"
    COMMENT "BPF ${name}: ${source}"
    VERBATIM)
  # Through a temporary file, so a failed bpftool leaves no empty header behind.
  add_custom_command(
    OUTPUT "${skel}"
    COMMAND "${PERFBUF_BPFTOOL}" gen skeleton "${obj}" name ${name} > "${skel}.tmp"
    COMMAND "${CMAKE_COMMAND}" -E rename "${skel}.tmp" "${skel}"
    DEPENDS "${obj}"
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS "${skel}")
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE "${out}" "${src_dir}")
  # The skeleton calls libbpf (bpf_object__open_skeleton, ...).
  if(TARGET PkgConfig::LIBBPF)
    target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  else()
    target_link_libraries(${name}_skel INTERFACE bpf)
  endif()
endfunction()
