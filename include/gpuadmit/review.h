// AdmissionReview v1 (admission.k8s.io/v1): the request the API server sends and the
// response it expects back.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gpuadmit {

// A request that cannot be reviewed at all. `uid` is set when the request got far enough to
// have one, so the answer can still be an AdmissionReview the API server shows to the user.
class ReviewError : public std::runtime_error {
 public:
  ReviewError(const std::string& message, std::string uid = {})
      : std::runtime_error(message), uid_(std::move(uid)) {}
  const std::string& uid() const { return uid_; }

 private:
  std::string uid_;
};

struct GroupVersionKind {
  std::string group, version, kind;
};
struct GroupVersionResource {
  std::string group, version, resource;
};

struct Request {
  std::string uid;
  GroupVersionKind kind;
  GroupVersionResource resource;
  std::string sub_resource;
  std::string name;
  std::string namespace_;
  std::string operation;  // CREATE, UPDATE, DELETE, CONNECT
  std::string username;
  std::vector<std::string> groups;
  nlohmann::json object;      // null when absent (DELETE)
  nlohmann::json old_object;  // null when absent (CREATE)
  bool dry_run = false;
  // Not on the wire: the object is already stored in the cluster and judged as if created today
  // (`gpu-admit audit`): the room and quota its own pods hold are not asked for a second time.
  bool stored = false;
};

struct Response {
  std::string uid;
  bool allowed = true;
  int status_code = 0;  // set when denied
  std::string status_reason;
  std::string status_message;
  nlohmann::json patch;  // RFC 6902 operations; empty array when the object is unchanged
  std::vector<std::string> warnings;
  std::map<std::string, std::string> audit_annotations;
};

// Parses an AdmissionReview v1 request; throws ReviewError naming the field that is wrong.
Request decode_admission_review(const nlohmann::json& review);
// The AdmissionReview v1 response: uid echoed, patch base64-encoded with patchType JSONPatch
// only when there is one, status only when denied.
nlohmann::json encode_admission_review(const Response& response);
// A denial for a request that could not be reviewed (ReviewError with a uid).
Response malformed_request_response(const ReviewError& error);

std::string base64_encode(std::string_view bytes);

// `text` cut to at most `limit` bytes (limit >= 3) at a UTF-8 character boundary, the cut marked
// with "...": for warnings and for client-controlled strings in logs.
std::string shorten(const std::string& text, std::size_t limit);

}  // namespace gpuadmit
