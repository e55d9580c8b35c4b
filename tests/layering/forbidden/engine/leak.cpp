// Never compiled: the input of the test `layering.RejectsAForbiddenInclude` (tests/CMakeLists.txt),
// which runs cmake/layering.cmake over tests/layering/forbidden/ and expects it to fail here.
#include "gpuadmit/engine.h"
#include "webhook/server/server.h"  // the engine reaching up into a front door
