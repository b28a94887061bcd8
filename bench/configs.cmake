# Writes bench/configs.csv (the standard benchmark configurations) as a C++ header, so
# bench_gru compiles in the same list the Python benchmarks and the tests read.
#   include(configs.cmake) + fastgru_bench_configs_header(<csv> <header>)   from CMakeLists.txt
#   cmake -DCONFIGS_CSV=<csv> -DCONFIGS_HEADER=<header> -P configs.cmake    standalone (tests)
function(fastgru_bench_configs_header csv header)
  file(STRINGS "${csv}" lines)
  set(entries "")
  set(seen_header FALSE)
  foreach(line IN LISTS lines)
    if(line MATCHES "^[ \t]*(#|$)")
      continue()
    endif()
    if(NOT seen_header)
      set(seen_header TRUE)
      continue()
    endif()
    if(NOT line MATCHES "^([A-Za-z0-9_]+),([0-9]+),([0-9]+),([0-9]+),([0-9]+),")
      message(FATAL_ERROR "${csv}: expected name,B,T,I,H,represents, got: ${line}")
    endif()
    string(APPEND entries "    {\"${CMAKE_MATCH_1}\", ${CMAKE_MATCH_2}, ${CMAKE_MATCH_3}, ${CMAKE_MATCH_4}, ${CMAKE_MATCH_5}},\n")
  endforeach()
  file(WRITE "${header}.tmp"
    "// Generated from bench/configs.csv by bench/configs.cmake; edit the CSV, not this file.\n"
    "#pragma once\n#include <cstddef>\n\n"
    "struct BenchConfig {\n  const char* name;\n  size_t B, T, I, H;\n};\n\n"
    "inline constexpr BenchConfig kConfigs[] = {\n${entries}};\n")
  configure_file("${header}.tmp" "${header}" COPYONLY)
  file(REMOVE "${header}.tmp")
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)
  fastgru_bench_configs_header("${CONFIGS_CSV}" "${CONFIGS_HEADER}")
endif()
