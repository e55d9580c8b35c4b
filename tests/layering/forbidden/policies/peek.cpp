// Never compiled: see tests/layering/forbidden/engine/leak.cpp.
#include "engine/k8s/quantity.h"
#include "engine/json_patch.h"  // a policy reaching into the pipeline's internals
