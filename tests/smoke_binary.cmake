# Runs the gpu-smoke binary and checks its exit status and messages (ctest -R SmokeBinary).
#   cmake -DGPU_SMOKE=<path> -DMODE=<mode> [-DSTUBS_DIR=<toolkit>/lib64/stubs] -DWORK_DIR=<dir> -P smoke_binary.cmake
# Modes:
#   CommandLine           --help/--version/--list-products exit 0, a bad flag exits 64; no GPU used.
#   NoVisibleGpuExitsTwo  CUDA_VISIBLE_DEVICES=-1 hides every GPU: exit 2, "no GPU visible" (or
#                         "no driver loaded" where there is no driver), valid JSON report.
#   StubDriverExitsTwo    libcuda.so.1 resolved to the toolkit's link stub: exit 2, "no driver loaded".
#   Run                   the real thing: on a GPU node (driver loaded, /dev/nvidiactl present) it
#                         must exit 0 and report healthy; elsewhere it must exit 2 with "no driver
#                         loaded" or "no GPU visible".
cmake_minimum_required(VERSION 3.22)

function(run_smoke)
  cmake_parse_arguments(R "" "" "ENV;ARGS" ${ARGN})
  execute_process(COMMAND ${CMAKE_COMMAND} -E env ${R_ENV} ${GPU_SMOKE} ${R_ARGS}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "gpu-smoke ${R_ARGS} (env: ${R_ENV}) -> exit ${rc}\n--- stdout ---\n${out}--- stderr ---\n${err}")
  set(rc "${rc}" PARENT_SCOPE)
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()

macro(expect_rc want)
  if(NOT rc STREQUAL "${want}")
    message(FATAL_ERROR "expected exit ${want}, got ${rc}")
  endif()
endmacro()

# A function, not a macro: macro arguments are re-parsed, which would eat regex escapes.
function(expect_match regex text what)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "expected ${what} to match '${regex}'")
  endif()
endfunction()

# The JSON report of a run that could not test a GPU: exit 2, a status and a message.
macro(expect_startup_json statuses)
  string(JSON _schema GET "${out}" schema)
  string(JSON _status GET "${out}" status)
  string(JSON _code GET "${out}" exit_code)
  string(JSON _message GET "${out}" message)
  string(JSON _checks LENGTH "${out}" checks)
  expect_match("^gpu-smoke/v1$" "${_schema}" "schema")
  expect_match("^(${statuses})$" "${_status}" "JSON status")
  expect_match("^2$" "${_code}" "JSON exit_code")
  expect_match("^${_status_prefix_${_status}}" "${_message}" "JSON message")
  expect_match("^0$" "${_checks}" "number of checks")
endmacro()
set(_status_prefix_no_gpu "no GPU visible: ")
set(_status_prefix_no_driver "no driver loaded: ")

if(MODE STREQUAL "CommandLine")
  run_smoke(ARGS --help)
  expect_rc(0)
  expect_match("Exit status: 0 healthy, 1 a check failed, 2 no GPU" "${out}" "--help")
  run_smoke(ARGS --version)
  expect_rc(0)
  expect_match("^gpu-smoke [0-9]+\\.[0-9]+\\.[0-9]+ \\(built with CUDA [0-9]+\\.[0-9]+\\)" "${out}" "--version")
  run_smoke(ARGS --list-products)
  expect_rc(0)
  expect_match("h100-sxm +NVIDIA H100 SXM5 80GB +NVIDIA-H100-80GB-HBM3" "${out}" "--list-products")
  run_smoke(ARGS --bogus)
  expect_rc(64)
  expect_match("^gpu-smoke: unknown argument '--bogus'" "${err}" "stderr")
  run_smoke(ARGS --mem-fraction 2)
  expect_rc(64)
  expect_match("--mem-fraction: '2' is not a fraction in \\(0, 1\\]" "${err}" "stderr")

elseif(MODE STREQUAL "NoVisibleGpuExitsTwo")
  run_smoke(ENV CUDA_VISIBLE_DEVICES=-1)
  expect_rc(2)
  expect_match("^gpu-smoke: (no GPU visible|no driver loaded): " "${err}" "stderr")
  expect_match("\\[cudaGetDeviceCount: cudaError[A-Za-z]+: " "${err}" "stderr (quoted CUDA error)")
  expect_match("^$" "${out}" "stdout (nothing without --json)")
  run_smoke(ENV CUDA_VISIBLE_DEVICES=-1 ARGS --json)
  expect_rc(2)
  expect_startup_json("no_gpu|no_driver")

elseif(MODE STREQUAL "StubDriverExitsTwo")
  if(NOT EXISTS "${STUBS_DIR}/libcuda.so")
    message(FATAL_ERROR "no CUDA driver stub at ${STUBS_DIR}/libcuda.so")
  endif()
  set(dir "${WORK_DIR}/smoke-stub-driver")
  file(MAKE_DIRECTORY "${dir}")
  file(CREATE_LINK "${STUBS_DIR}/libcuda.so" "${dir}/libcuda.so.1" SYMBOLIC)
  run_smoke(ENV LD_LIBRARY_PATH=${dir} ARGS --json)
  expect_rc(2)
  expect_startup_json("no_driver")
  expect_match("link stub" "${_message}" "JSON message")
  expect_match("\\[cudaGetDeviceCount: cudaErrorStubLibrary: " "${_message}" "JSON message")

elseif(MODE STREQUAL "Run")
  run_smoke(ARGS --json)
  if(EXISTS /proc/driver/nvidia/version AND EXISTS /dev/nvidiactl)
    string(JSON _status GET "${out}" status)
    expect_match("^healthy$" "${_status}" "JSON status on a GPU node")
    expect_rc(0)
  else()
    expect_rc(2)
    expect_startup_json("no_gpu|no_driver")
    expect_match("^gpu-smoke: (no GPU visible|no driver loaded): " "${err}" "stderr")
  endif()

else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
