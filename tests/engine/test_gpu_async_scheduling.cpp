// Async scheduling on the CUDA backend: deferred draws, ids fed to the next embedding by a
// kernel, batch metadata uploaded without waiting for the step in flight.
#define TLLM_ASYNC_DEVICE "cuda"
#include "async_scheduling_cases.h"
