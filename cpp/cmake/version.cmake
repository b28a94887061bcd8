# The version is written once, in pyproject.toml. scikit-build-core passes it as
# SKBUILD_PROJECT_VERSION_FULL; a plain CMake build reads it from the file. Sets FASTGRU_VERSION
# (the string as written, e.g. 0.2.0.dev1) and FASTGRU_VERSION_NUMBER (its numeric part, for
# project(VERSION) and the package version file). Included before project().
if(DEFINED SKBUILD_PROJECT_VERSION_FULL)
  set(FASTGRU_VERSION "${SKBUILD_PROJECT_VERSION_FULL}")
else()
  set(pyproject "${CMAKE_CURRENT_LIST_DIR}/../../pyproject.toml")
  file(STRINGS "${pyproject}" version_line REGEX "^version = \"[^\"]+\"$" LIMIT_COUNT 1)
  if(NOT version_line)
    message(FATAL_ERROR "no 'version = \"...\"' line in ${pyproject}")
  endif()
  string(REGEX REPLACE "^version = \"([^\"]+)\"$" "\\1" FASTGRU_VERSION "${version_line}")
endif()
string(REGEX MATCH "^[0-9]+(\\.[0-9]+)?(\\.[0-9]+)?" FASTGRU_VERSION_NUMBER "${FASTGRU_VERSION}")
