// OpenBLAS from the system (Debian: libopenblas-dev), seen by Swift as the module CBLAS: its CBLAS
// interface (cblas_sgemm) and the call that stops it starting threads of its own.
#include <cblas.h>
