#include <openssl/evp.h>

#include <type_traits>

#include "engine/json_writer.h"
#include "engine/review_wire.h"
#include "gpuadmit/workload.h"

namespace gpuadmit {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxUidBytes = 256;

// Reads an optional string field; a present field of another type is an error, not a default.
std::string optional_string(const json& parent, const char* key, const std::string& where,
                            const std::string& uid) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return {};
  if (!it->is_string()) throw ReviewError(where + "." + key + " must be a string", uid);
  return it->get<std::string>();
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

namespace {

// Both overloads: `Review` is `const json` (the objects are copied out) or `json` (they are moved
// out, leaving null in the review the caller gave up).
template <typename Review>
Request decode(Review& review) {
  if (!review.is_object()) throw ReviewError("the body must be a JSON object (an AdmissionReview)");
  std::string api_version = optional_string(review, "apiVersion", "", "");
  std::string kind = optional_string(review, "kind", "", "");
  if (kind != "AdmissionReview")
    throw ReviewError("kind must be AdmissionReview, got '" + kind + "'");
  if (api_version != "admission.k8s.io/v1")
    throw ReviewError("apiVersion must be admission.k8s.io/v1, got '" + api_version +
                      "' (set admissionReviewVersions: [v1] in the webhook configuration)");
  auto req_it = review.find("request");
  if (req_it == review.end() || !req_it->is_object())
    throw ReviewError("the AdmissionReview has no request object");
  auto& req = *req_it;  // const exactly when the review is

  Request request;
  request.uid = optional_string(req, "uid", "request", "");
  if (request.uid.empty()) throw ReviewError("request.uid is missing or empty");
  // The API server sends a UUID. A longer one is not echoed back (nor logged).
  if (request.uid.size() > kMaxUidBytes)
    throw ReviewError("request.uid is longer than " + std::to_string(kMaxUidBytes) + " bytes");
  const std::string& uid = request.uid;

  // Absent sections read as empty objects, without copying the present ones.
  static const json kEmptyObject = json::object();
  auto section = [&](const char* key) -> const json& {
    auto it = req.find(key);
    return it == req.end() ? kEmptyObject : *it;
  };
  const json& gvk = section("kind");
  if (!gvk.is_object()) throw ReviewError("request.kind must be an object", uid);
  request.kind = {optional_string(gvk, "group", "request.kind", uid),
                  optional_string(gvk, "version", "request.kind", uid),
                  optional_string(gvk, "kind", "request.kind", uid)};
  const json& gvr = section("resource");
  if (!gvr.is_object()) throw ReviewError("request.resource must be an object", uid);
  request.resource = {optional_string(gvr, "group", "request.resource", uid),
                      optional_string(gvr, "version", "request.resource", uid),
                      optional_string(gvr, "resource", "request.resource", uid)};
  request.sub_resource = optional_string(req, "subResource", "request", uid);
  request.name = optional_string(req, "name", "request", uid);
  request.namespace_ = optional_string(req, "namespace", "request", uid);
  // Namespace names are DNS labels: anything else (a NUL inside, "kube-system\0x") never comes
  // from an API server, and must not match an excluded namespace's pattern by accident.
  if (!request.namespace_.empty() && !is_dns_label(request.namespace_))
    throw ReviewError("request.namespace must be a namespace name (a DNS label)", uid);
  request.operation = optional_string(req, "operation", "request", uid);
  static const char* kOperations[] = {"CREATE", "UPDATE", "DELETE", "CONNECT"};
  if (std::find(std::begin(kOperations), std::end(kOperations), request.operation) ==
      std::end(kOperations))
    throw ReviewError("request.operation must be CREATE, UPDATE, DELETE or CONNECT, got '" +
                          request.operation + "'",
                      uid);

  const json& user = section("userInfo");
  if (user.is_object()) {
    request.username = optional_string(user, "username", "request.userInfo", uid);
    if (auto groups = user.find("groups"); groups != user.end() && groups->is_array())
      for (const auto& group : *groups)
        if (group.is_string()) request.groups.push_back(group.template get<std::string>());
  }

  for (auto [key, target] : {std::pair{"object", &request.object},
                             std::pair{"oldObject", &request.old_object}}) {
    auto it = req.find(key);
    if (it == req.end() || it->is_null()) continue;
    if (!it->is_object()) throw ReviewError(std::string("request.") + key + " must be a JSON object", uid);
    if constexpr (std::is_const_v<Review>)
      *target = *it;
    else
      *target = std::move(*it);
  }
  if ((request.operation == "CREATE" || request.operation == "UPDATE") && request.object.is_null())
    throw ReviewError("request.object is missing for a " + request.operation, uid);

  if (auto dry = req.find("dryRun"); dry != req.end() && !dry->is_null()) {
    if (!dry->is_boolean()) throw ReviewError("request.dryRun must be a boolean", uid);
    request.dry_run = dry->template get<bool>();
  }
  return request;
}

}  // namespace

Request decode_admission_review(const json& review) { return decode(review); }

Request decode_admission_review(json&& review) { return decode(review); }

std::string serialize_admission_review(const Response& response) {
  // The keys in the order json's std::map dumps them: apiVersion, kind, response; and in the
  // response allowed, auditAnnotations, patch, patchType, status, uid, warnings.
  std::string out = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"allowed":)";
  out += response.allowed ? "true" : "false";
  // The strings are written where they are, not copied into a json first.
  if (!response.audit_annotations.empty()) {
    out += R"(,"auditAnnotations":{)";
    for (const auto& [key, value] : response.audit_annotations) {
      if (out.back() != '{') out += ',';
      append_json_string(out, key);
      out += ':';
      append_json_string(out, value);
    }
    out += '}';
  }
  if (response.allowed && response.patch.is_array() && !response.patch.empty()) {
    // Base64 has nothing to escape: written as is rather than scanned again by the serializer.
    out += R"(,"patch":")";
    out += base64_encode(write_json(response.patch));
    out += R"(","patchType":"JSONPatch")";
  }
  if (!response.allowed) {
    json status = {{"code", response.status_code}, {"message", response.status_message}};
    if (!response.status_reason.empty()) status["reason"] = response.status_reason;
    out += R"(,"status":)";
    append_json(out, status);
  }
  out += R"(,"uid":)";
  append_json_string(out, response.uid);
  if (!response.warnings.empty()) {
    out += R"(,"warnings":[)";
    for (const std::string& warning : response.warnings) {
      if (out.back() != '[') out += ',';
      append_json_string(out, warning);
    }
    out += ']';
  }
  out += "}}";
  return out;
}

// One encoder: the JSON form is the bytes the webhook sends, parsed.
json encode_admission_review(const Response& response) { return json::parse(serialize_admission_review(response)); }

Response malformed_request_response(const ReviewError& error) {
  Response response;
  response.uid = error.uid();
  response.allowed = false;
  response.status_code = 400;
  response.status_reason = "BadRequest";
  response.status_message = std::string("gpu-admit could not review this request: ") + error.what();
  return response;
}

}  // namespace gpuadmit
