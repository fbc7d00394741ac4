// Which BLAS library the process really loaded (dlib's DNN speed depends on it: reference BLAS
// is ~14x slower than OpenBLAS here).
#pragma once

#include <string>

namespace fedface {

// A one-line description such as "OpenBLAS 0.3.21 (pthread, Haswell)" or
// "reference BLAS (/usr/lib/.../blas/libblas.so.3) - slow". Safe to call at any time.
std::string LoadedBlasDescription();

// True when OpenBLAS is the BLAS in use.
bool OpenBlasInUse();

// Sets OpenBLAS's own thread count (no-op on other BLAS). Each engine worker runs one network
// on one BLAS thread; parallelism comes from the worker pool.
void SetBlasThreads(int threads);

}  // namespace fedface
