// Async scheduling on the CPU backend (its deferred draw is the synchronous default).
#define TLLM_ASYNC_DEVICE "cpu"
#include "async_scheduling_cases.h"
