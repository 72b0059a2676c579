// Stands in for the CUDA toolkit's header when the kernels are compiled for the host (see ../emu.h).
#pragma once
#include "../emu.h"
