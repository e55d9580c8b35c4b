# Turns policies/default.yaml into a C++ string so the binary carries its default config.
file(READ ${IN} CONTENT HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," BYTES "${CONTENT}")
file(WRITE ${OUT} "// Generated from policies/default.yaml by cmake/embed.cmake.\n#include <string_view>\nnamespace gpuadmit {\nstatic const unsigned char kBytes[] = {${BYTES} 0};\nstd::string_view embedded_default_config() {\n  return {reinterpret_cast<const char*>(kBytes), sizeof(kBytes) - 1};\n}\n}  // namespace gpuadmit\n")
