# Third-party packages. build.sh installs the Debian packages that provide them.
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
if(TANDEM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(TANDEM_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
