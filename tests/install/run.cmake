# Installs the build into a scratch prefix, then configures, builds and runs an outside project
# that uses find_package(kerascpp) and pkg-config.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(f include/kerascpp/kerascpp.h include/kerascpp/core/tensor.h include/kerascpp/distributed/strategy.h lib/libkerascpp.so
          lib/kerascpp/libkerascpp_backend_cpu.so lib/cmake/kerascpp/kerascppConfig.cmake lib/pkgconfig/kerascpp.pc)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "missing from the install: ${f}")
  endif()
endforeach()
if(EXISTS ${prefix}/include/kerascpp/core/check.h)
  message(FATAL_ERROR "an internal header was installed: core/check.h")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/consumer -B ${WORK_DIR}/build
                        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed")
endif()
# The consumer finds the plugin in the installed plugin folder (baked in at build time) or via
# KERASCPP_BACKEND_PATH when the prefix moved: here the prefix is not the configured one.
execute_process(COMMAND ${CMAKE_COMMAND} -E env KERASCPP_BACKEND_PATH=${prefix}/lib/kerascpp
                        LD_LIBRARY_PATH=${prefix}/lib ${WORK_DIR}/build/consumer
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
message(STATUS "consumer printed: ${out}")
if(rc OR NOT out MATCHES "sum = 10" OR NOT out MATCHES "replicas = 2")
  message(FATAL_ERROR "the consumer did not run correctly (${rc})")
endif()
# pkg-config describes the same library.
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${prefix}/lib/pkgconfig ${PKG_CONFIG} --libs kerascpp
                  OUTPUT_VARIABLE libs RESULT_VARIABLE rc)
  if(rc OR NOT libs MATCHES "-lkerascpp")
    message(FATAL_ERROR "pkg-config --libs kerascpp gave '${libs}'")
  endif()
endif()
