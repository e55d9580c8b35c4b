// Never compiled: see tests/layering/forbidden/engine/leak.cpp.
#include "policies/policies.h"
#include "policies/gpu-shape/shapes.h"  // one policy reaching into another's folder
