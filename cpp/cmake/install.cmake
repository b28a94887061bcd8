# `cmake --install` of the C++ library: the public headers (with the generated version.h), the
# library, and a CMake package so that a program does find_package(fastgru) and links
# fastgru::fastgru (examples/cpp). Wheel builds turn FASTGRU_INSTALL off: a wheel holds _core only.
include(CMakePackageConfigHelpers)

set(FASTGRU_PACKAGE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/fastgru")

install(TARGETS fastgru_core EXPORT fastgruTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(DIRECTORY include/fastgru "${CMAKE_CURRENT_BINARY_DIR}/include/fastgru"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT fastgruTargets NAMESPACE fastgru:: DESTINATION "${FASTGRU_PACKAGE_DIR}")

configure_package_config_file(cmake/fastgruConfig.cmake.in fastgruConfig.cmake
                              INSTALL_DESTINATION "${FASTGRU_PACKAGE_DIR}")
# Before 1.0 a new minor version may change the API.
write_basic_package_version_file(fastgruConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/fastgruConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/fastgruConfigVersion.cmake"
        DESTINATION "${FASTGRU_PACKAGE_DIR}")
