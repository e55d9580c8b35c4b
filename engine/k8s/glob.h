// Registry and repository patterns in policies ("nvcr.io/nvidia/*", "ghcr.io/**").
#pragma once

#include <string_view>

namespace gpuadmit::k8s {

// Whole-string match. `*` matches any run of characters except '/', `**` (or a longer run
// of stars) matches any run including '/', `?` matches one character other than '/'.
// Every other character is literal. Characters are bytes: image references are ASCII.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace gpuadmit::k8s
