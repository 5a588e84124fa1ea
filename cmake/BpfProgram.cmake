# add_bpf_skeleton(<name> <source.bpf.c>)
#
# Compiles a BPF program with clang (-target bpf) and generates its libbpf
# skeleton header <name>.skel.h with bpftool. Defines an INTERFACE target
# <name>_skel whose include directory holds the generated header, so a plain
# build produces every BPF object and skeleton; nothing generated is committed.

find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
find_path(LIBBPF_INCLUDE_DIR bpf/bpf_helpers.h REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_TARGET_ARCH arm64)
else()
  set(BPF_TARGET_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# <linux/types.h> needs <asm/types.h>, which Debian keeps in the multiarch folder
# that clang does not search for -target bpf.
set(BPF_SYSTEM_INCLUDES)
if(CMAKE_LIBRARY_ARCHITECTURE AND EXISTS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
  list(APPEND BPF_SYSTEM_INCLUDES -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
endif()

set(BPF_GENERATED_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${BPF_GENERATED_DIR})

function(add_bpf_skeleton name source)
  get_filename_component(src ${source} ABSOLUTE)
  get_filename_component(src_dir ${src} DIRECTORY)
  set(obj ${BPF_GENERATED_DIR}/${name}.bpf.o)
  set(skel ${BPF_GENERATED_DIR}/${name}.skel.h)
  file(GLOB bpf_headers ${src_dir}/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -Wall -target bpf
            -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -I${src_dir} -I${LIBBPF_INCLUDE_DIR} ${BPF_SYSTEM_INCLUDES}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${bpf_headers}
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${BPF_GENERATED_DIR} ${src_dir})
endfunction()
