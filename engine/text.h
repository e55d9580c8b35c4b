// String helpers every part of gpu-admit shares, so each is written (and means) one thing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gpuadmit {

// `text` without leading and trailing `blanks`.
std::string trim(std::string_view text, std::string_view blanks = " \t\r\n");

// `parts` with `separator` between each two.
std::string join(const std::vector<std::string>& parts, std::string_view separator = ", ");

}  // namespace gpuadmit
