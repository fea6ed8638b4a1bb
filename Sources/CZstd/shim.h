// libzstd, seen by Swift as the module CZstd. Only the stable API of zstd.h is used.
#include <zstd.h>
