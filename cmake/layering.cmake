# Which folder may include which: a header is included by its path from the repository root, and
# each folder below may include only the prefixes listed for it (system headers are not checked).
# Run by the build before anything compiles (CMakeLists.txt, target gpuadmit_layering), so an
# include across a boundary fails the build with the file and the rule.
#   cmake -DROOT=<checkout> [-DSTAMP=<file>] -P cmake/layering.cmake
#
# The rooms, lowest first (ARCHITECTURE.md):
#   include/gpuadmit/  the SDK: the engine API and the policy interface; includes only itself.
#   engine/            the pipeline and the semantics libraries (k8s/, capacity/); knows no policy
#                      and no front door.
#   policies/          the policies, one folder each: the SDK, their shared helpers at policies/ (never
#                      another policy's folder), and the engine's semantics
#                      libraries (k8s/, capacity/, resources.h) and text.h, never the pipeline's internals.
#   webhook/log/       JSON log lines; of ours, only the engine's JSON writer.
#   webhook/kube/      the Kubernetes API client: log/ and the engine.
#   webhook/server/    the HTTPS webhook and the live cluster: kube/, log/ and the engine.
#   webhook/cli/       the commands: every room above.
#   webhook/main.cpp   the process entry point: cli/ only.
set(rule_folders
  "include/gpuadmit/"
  "engine/"
  "policies/"
  "webhook/log/"
  "webhook/kube/"
  "webhook/server/"
  "webhook/cli/"
  "webhook/main.cpp")
set(rule_allowed
  "gpuadmit/"
  "engine/ gpuadmit/"
  "policies/ gpuadmit/ engine/k8s/ engine/capacity/ engine/resources.h engine/text.h"
  "webhook/log/ engine/json_writer.h"
  "webhook/kube/ webhook/log/ engine/ gpuadmit/"
  "webhook/server/ webhook/kube/ webhook/log/ engine/ gpuadmit/"
  "webhook/ engine/ gpuadmit/"
  "webhook/cli/")

if(NOT ROOT)
  message(FATAL_ERROR "layering.cmake needs -DROOT=<checkout>")
endif()
file(GLOB_RECURSE files RELATIVE ${ROOT}
     ${ROOT}/include/*.h ${ROOT}/engine/*.h ${ROOT}/engine/*.cpp ${ROOT}/policies/*.h ${ROOT}/policies/*.cpp
     ${ROOT}/webhook/*.h ${ROOT}/webhook/*.cpp)
list(LENGTH rule_folders rule_count)
math(EXPR last "${rule_count} - 1")
set(violations "")
foreach(file IN LISTS files)
  # The rule of the longest folder that holds the file.
  set(allowed "")
  set(best "")
  foreach(i RANGE ${last})
    list(GET rule_folders ${i} folder)
    string(LENGTH "${folder}" length)
    string(SUBSTRING "${file}" 0 ${length} head)
    string(LENGTH "${best}" best_length)
    if(head STREQUAL folder AND length GREATER best_length)
      set(best "${folder}")
      list(GET rule_allowed ${i} allowed)
    endif()
  endforeach()
  if(best STREQUAL "")
    list(APPEND violations "${file}: no rule covers this folder; add one to cmake/layering.cmake")
    continue()
  endif()
  string(REPLACE " " ";" allowed "${allowed}")
  file(STRINGS ${ROOT}/${file} includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*" "\\1" header "${line}")
    set(ok FALSE)
    foreach(prefix IN LISTS allowed)
      string(LENGTH "${prefix}" length)
      string(SUBSTRING "${header}" 0 ${length} head)
      if(head STREQUAL prefix)
        set(ok TRUE)
      endif()
    endforeach()
    if(NOT ok)
      string(REPLACE ";" ", " shown "${allowed}")
      list(APPEND violations "${file} includes \"${header}\": ${best} may include only ${shown}")
    elseif(file MATCHES "^policies/([^/]+)/" AND header MATCHES "^policies/([^/]+)/")
      # A policy's folder is its own: what two policies share goes to policies/ itself.
      string(REGEX REPLACE "^policies/([^/]+)/.*" "\\1" own "${file}")
      string(REGEX REPLACE "^policies/([^/]+)/.*" "\\1" other "${header}")
      if(NOT own STREQUAL other)
        list(APPEND violations "${file} includes \"${header}\": a policy may not include another policy's folder (share it in policies/)")
      endif()
    endif()
  endforeach()
endforeach()
if(violations)
  string(REPLACE ";" "\n  " shown "${violations}")
  message(FATAL_ERROR "include across a boundary (cmake/layering.cmake):\n  ${shown}")
endif()
if(STAMP)
  file(TOUCH ${STAMP})
endif()
