// The webhook path's cheaper forms of review.h's AdmissionReview coding, for callers that own
// the parsed review or want the answer's bytes directly.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "gpuadmit/review.h"

namespace gpuadmit {

// decode_admission_review, moving `object` and `oldObject` out of a review the caller no longer
// needs instead of copying them (a GPU Deployment is most of the request's bytes).
Request decode_admission_review(nlohmann::json&& review);

// The AdmissionReview response's bytes, written directly (encode_admission_review parses them):
// keys in the order nlohmann's std::map dumps them, and the base64 patch, most of a mutating
// answer, not scanned again for characters to escape.
std::string serialize_admission_review(const Response& response);

}  // namespace gpuadmit
