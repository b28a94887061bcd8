# Cross-compiles for 64-bit ARM Linux with Debian's/Ubuntu's g++-aarch64-linux-gnu:
#   cmake -S . -B build-arm64 -G Ninja --toolchain cpp/cmake/aarch64-linux-gnu.toolchain.cmake
# (run the programs with qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu). The variants there:
# generic, neon and neon_bf16 (cpp/CMakeLists.txt).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)  # CMAKE_PREFIX_PATH finds an installed fastgru
