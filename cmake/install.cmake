# Installation: headers under include/kerascpp/, libkerascpp.so, plugins under lib/kerascpp/,
# a CMake package (find_package(kerascpp) -> kerascpp::kerascpp) and a pkg-config file.
include(CMakePackageConfigHelpers)

install(TARGETS kerascpp EXPORT kerascppTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/kerascpp.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kerascpp)
# Public headers only: internal ones (check.h, ops_util.h) need fmt and stay private.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/core/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kerascpp/core
  FILES_MATCHING PATTERN "*.h" PATTERN "check.h" EXCLUDE PATTERN "ops_util.h" EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/layers/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kerascpp/layers
  FILES_MATCHING PATTERN "*.h" PATTERN "conv_config.h" EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/models/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kerascpp/models
  FILES_MATCHING PATTERN "*.h" PATTERN "h5_file.h" EXCLUDE PATTERN "zip_archive.h" EXCLUDE PATTERN "file_io.h" EXCLUDE
  PATTERN "keras_file.h" EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/distributed/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kerascpp/distributed
  FILES_MATCHING PATTERN "*.h" PATTERN "communicator_plugin.h" EXCLUDE)

install(EXPORT kerascppTargets NAMESPACE kerascpp:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kerascpp)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kerascppConfig.cmake.in
  ${CMAKE_BINARY_DIR}/kerascppConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kerascpp)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/kerascppConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/kerascppConfig.cmake ${CMAKE_BINARY_DIR}/kerascppConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kerascpp)

configure_file(${PROJECT_SOURCE_DIR}/cmake/kerascpp.pc.in ${CMAKE_BINARY_DIR}/kerascpp.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/kerascpp.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
