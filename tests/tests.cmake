# Included by tests/CMakeLists.txt after the gpuadmit_tests target exists (smoke/ is added
# before tests/, so smoke/CMakeLists.txt cannot do this itself). Keep this file.

# gpu-smoke's GPU-free core (tests/unit/smoke/smoke_core_test.cpp, suites Smoke*).
if(TARGET gpusmoke_core)
  target_link_libraries(gpuadmit_tests PRIVATE gpusmoke_core)
endif()

# gpu-smoke itself, where nvcc built it. See tests/smoke_binary.cmake for what each mode
# asserts; all of them pass on machines with and without a GPU.
if(TARGET gpu-smoke)
  get_target_property(_gpusmoke_stubs gpu-smoke GPUSMOKE_CUDA_STUBS_DIR)
  foreach(_mode IN ITEMS CommandLine NoVisibleGpuExitsTwo StubDriverExitsTwo Run)
    add_test(NAME SmokeBinary.${_mode}
             COMMAND ${CMAKE_COMMAND} -DGPU_SMOKE=$<TARGET_FILE:gpu-smoke> -DMODE=${_mode}
                     -DSTUBS_DIR=${_gpusmoke_stubs} -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}
                     -P ${CMAKE_CURRENT_SOURCE_DIR}/smoke_binary.cmake)
    set_tests_properties(SmokeBinary.${_mode} PROPERTIES TIMEOUT 600)
  endforeach()
endif()
