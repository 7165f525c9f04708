#pragma once
// Loading the CUDA module (libmoesim_cuda.so; its C boundary is
// cuda_module_api.h). Looked for at $MOESIM_CUDA_MODULE, else beside the
// running executable (where the build puts it). Loaded with dlopen on first
// use, once per process, and kept for the process's lifetime.

#include <string>

#include "hwmodels/kernels/cuda_module_api.h"

namespace moesim::kern::cuda {

// The module's API table; nullptr with `why` set when the module is not
// there, does not load, or speaks another API version than
// kMoesimCudaApiVersion (the message gives both versions).
const MoesimCudaApi* loaded_module(std::string* why);

}  // namespace moesim::kern::cuda
