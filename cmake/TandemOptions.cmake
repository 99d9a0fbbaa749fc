# Build options of the Tandem core.
set(TANDEM_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO (when nvcc is found), ON, OFF")
set_property(CACHE TANDEM_CUDA PROPERTY STRINGS AUTO ON OFF)
option(TANDEM_BUILD_TESTS "Build the GoogleTest suites" ON)
option(TANDEM_BUILD_BENCH "Build the Google Benchmark programs" ON)
set(TANDEM_SANITIZE "" CACHE STRING "Sanitizers to enable, e.g. address,undefined")

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_C_STANDARD 11)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
set(CMAKE_CXX_VISIBILITY_PRESET hidden)
set(CMAKE_VISIBILITY_INLINES_HIDDEN ON)

# CUDA: found or not, the CPU build always succeeds; ON without nvcc is an error.
set(TANDEM_HAVE_CUDA OFF)
if(NOT TANDEM_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Hopper only, as sm_90a so that kernels may use wgmma and TMA. The -gencode form is spelled
    # out (and CMake's own architecture flags turned off) because nvcc 13.0's -arch=sm_90a
    # shorthand also runs a plain sm_90 pass that rejects those instructions.
    set(CMAKE_CUDA_ARCHITECTURES OFF)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(CMAKE_CUDA_EXTENSIONS OFF)
    set(TANDEM_CUDA_FLAGS -gencode=arch=compute_90a,code=sm_90a)
    set(TANDEM_HAVE_CUDA ON)
  elseif(TANDEM_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TANDEM_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()
message(STATUS "Tandem: CUDA backend ${TANDEM_HAVE_CUDA}")
