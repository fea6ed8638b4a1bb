// The header's only function is static inline; this file gives SwiftPM a C target to build.
#include "CPrefetch.h"
