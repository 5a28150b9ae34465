// A kernel timeline for any CUDA program, graphs included: a CUPTI injection library.
// The driver loads it when CUDA_INJECTION64_PATH names it and calls InitializeInjection();
// CUPTI's activity API then records every kernel's start and end (GPU timestamps, ns), and
// at exit the records go to $TLLM_KTRACE_OUT (default ktrace.csv) as
//   start,end,graph_node,grid,block,name
// one line per kernel (template arguments' commas written as ';'), in the order CUPTI hands
// the records over. Copies and memsets are lines too, with grid "copy" and block the
// direction (HtoD, DtoH, DtoD, HtoH, PtoP, set) and name "memcpy N B" / "memset N B": the
// chain between two decode graphs is mostly small copies. scripts/dev/kernel_trace.py reads it.
//
// Built as build/bench/cuda/libkernel_trace.so where the toolkit has CUPTI. Use:
//   CUDA_INJECTION64_PATH=$PWD/build/bench/cuda/libkernel_trace.so TLLM_KTRACE_OUT=t.csv \
//       tinyllm bench ...
//   python3 scripts/dev/kernel_trace.py t.csv
// (libcupti.so.13 must be on the library path; the device runs carry it in build/pack/lib.)
// Tracing lengthens the host's part of a step (7B decode on an H200: graphs ~170 us apart
// traced; the untraced throughput implies ~50) and seems to leave the GPU's span as it is;
// read the timeline for where time goes and take throughput from untraced runs.
#include <cupti.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace {

std::mutex g_mutex;
FILE* g_out = nullptr;
constexpr size_t kBufferBytes = 16u << 20;

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  std::fprintf(stderr, "kernel_trace: %s failed: %s\n", what, msg ? msg : "?");
}

// Demangled name without the argument list; template arguments kept (they name variants).
std::string short_name(const char* mangled) {
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string s = (status == 0 && d) ? d : mangled;
  std::free(d);
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {  // cut at the '(' of the parameter list
    if (s[i] == '<') ++depth;
    if (s[i] == '>') --depth;
    if (s[i] == '(' && depth == 0 && s.compare(i, 21, "(anonymous namespace)") != 0) {
      s.resize(i);
      break;
    }
  }
  for (char& c : s)
    if (c == ',') c = ';';  // the file is comma-separated
  return s;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = kBufferBytes;
  *max_records = 0;
}

const char* copy_direction(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "PtoP";
    default: return "other";
  }
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard<std::mutex> lock(g_mutex);
  CUpti_Activity* rec = nullptr;
  while (g_out && cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
      std::fprintf(g_out, "%llu,%llu,%llu,%dx%dx%d,%dx%dx%d,%s\n", static_cast<unsigned long long>(k->start),
                   static_cast<unsigned long long>(k->end), static_cast<unsigned long long>(k->graphNodeId),
                   k->gridX, k->gridY, k->gridZ, k->blockX, k->blockY, k->blockZ, short_name(k->name).c_str());
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* c = reinterpret_cast<const CUpti_ActivityMemcpy6*>(rec);
      std::fprintf(g_out, "%llu,%llu,%llu,copy,%s,memcpy %llu B\n", static_cast<unsigned long long>(c->start),
                   static_cast<unsigned long long>(c->end), static_cast<unsigned long long>(c->graphNodeId),
                   copy_direction(c->copyKind), static_cast<unsigned long long>(c->bytes));
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(rec);
      std::fprintf(g_out, "%llu,%llu,%llu,copy,set,memset %llu B\n", static_cast<unsigned long long>(m->start),
                   static_cast<unsigned long long>(m->end), static_cast<unsigned long long>(m->graphNodeId),
                   static_cast<unsigned long long>(m->bytes));
    }
  }
  size_t dropped = 0;
  cuptiActivityGetNumDroppedRecords(nullptr, 0, &dropped);
  if (dropped) std::fprintf(stderr, "kernel_trace: %zu records dropped\n", dropped);
  std::free(buffer);
}

void finish() {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_out) std::fclose(g_out);
  g_out = nullptr;
}

}  // namespace

extern "C" int InitializeInjection(void) {
  const char* path = std::getenv("TLLM_KTRACE_OUT");
  g_out = std::fopen(path && *path ? path : "ktrace.csv", "w");
  if (!g_out) {
    std::perror("kernel_trace: output");
    return 0;
  }
  std::fprintf(g_out, "start,end,graph_node,grid,block,name\n");
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable kernel");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "cuptiActivityEnable memcpy");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "cuptiActivityEnable memset");
  std::atexit(finish);
  return 1;
}
