// cuda/rates.cu compiled for the host against emu.h, for the library with CUDA emulated (see CMakeLists.txt).
#include "cuda/rates.cu"
