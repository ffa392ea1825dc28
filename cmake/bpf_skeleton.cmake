# bpf_skeleton(NAME): bpf/NAME.bpf.c -> NAME.bpf.o (clang, BPF target, CO-RE)
#                     -> NAME.skel.h (bpftool gen skeleton), exposed as the
#                     INTERFACE library bpf_NAME so user-side code can include it.
#
# vmlinux.h: generated once per build tree from the running kernel's BTF
# (/sys/kernel/btf/vmlinux). CO-RE relocates every field access at load time, so
# the header only has to *declare* the kernel types; it need not match the kernel
# the sidecar later runs on. Generating it (instead of pinning a 3 MB copy in git)
# keeps the repository small and always in step with the tracepoints we attach
# to. A build host without BTF can point TRACER_VMLINUX_H at a header generated
# elsewhere with `bpftool btf dump file /sys/kernel/btf/vmlinux format c`.

find_program(BPF_CLANG clang REQUIRED)
find_program(BPFTOOL bpftool REQUIRED)

set(TRACER_VMLINUX_H "" CACHE FILEPATH "Pre-generated vmlinux.h (default: from /sys/kernel/btf/vmlinux)")
set(BPF_GENERATED_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${BPF_GENERATED_DIR})

if(TRACER_VMLINUX_H)
  configure_file(${TRACER_VMLINUX_H} ${BPF_GENERATED_DIR}/vmlinux.h COPYONLY)
elseif(EXISTS /sys/kernel/btf/vmlinux)
  add_custom_command(
    OUTPUT ${BPF_GENERATED_DIR}/vmlinux.h
    COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${BPF_GENERATED_DIR}/vmlinux.h
    COMMENT "Generating vmlinux.h from the kernel's BTF"
    VERBATIM)
else()
  message(FATAL_ERROR "No /sys/kernel/btf/vmlinux: set -DTRACER_VMLINUX_H=path/to/vmlinux.h")
endif()
add_custom_target(vmlinux_h DEPENDS ${BPF_GENERATED_DIR}/vmlinux.h)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(BPF_TARGET_ARCH arm64)
else()
  message(FATAL_ERROR "Unsupported architecture for BPF: ${CMAKE_SYSTEM_PROCESSOR}")
endif()

function(bpf_skeleton NAME)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${NAME}.bpf.c)
  set(obj ${BPF_GENERATED_DIR}/${NAME}.bpf.o)
  set(skel ${BPF_GENERATED_DIR}/${NAME}.skel.h)
  file(GLOB headers ${CMAKE_CURRENT_SOURCE_DIR}/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -I${BPF_GENERATED_DIR} -I${CMAKE_CURRENT_SOURCE_DIR}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${headers} vmlinux_h
    COMMENT "BPF ${NAME}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${NAME}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "Skeleton ${NAME}.skel.h"
    VERBATIM)
  add_custom_target(bpf_${NAME}_skel DEPENDS ${skel})
  add_library(bpf_${NAME} INTERFACE)
  add_dependencies(bpf_${NAME} bpf_${NAME}_skel)
  target_include_directories(bpf_${NAME} INTERFACE ${BPF_GENERATED_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(bpf_${NAME} INTERFACE PkgConfig::LIBBPF)
endfunction()
