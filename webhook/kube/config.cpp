#include "webhook/kube/config.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/input_limits.h"
#include "engine/text.h"
#include "engine/manifests.h"

namespace gpuadmit::kube {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Regular files of bounded size only (engine/input_limits.h): a kubeconfig, a token or a
// certificate named as /dev/zero or a FIFO must not hang or fill the process.
bool read_file(const std::string& path, std::string& out) {
  try {
    out = read_input_file(path);
    return true;
  } catch (const InputError&) {
    return false;
  }
}

// Standard base64 as kubeconfig *-data fields use it; whitespace is ignored.
bool decode_base64(const std::string& encoded, std::string& out) {
  std::string clean;
  for (char c : encoded)
    if (!std::isspace(static_cast<unsigned char>(c))) clean.push_back(c);
  if (clean.size() % 4 != 0) return false;
  std::string decoded(clean.size() / 4 * 3, '\0');
  int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                               reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (length < 0) return false;
  // EVP_DecodeBlock counts padding as output bytes.
  size_t padding = 0;
  if (!clean.empty() && clean.back() == '=') ++padding;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++padding;
  decoded.resize(static_cast<size_t>(length) - padding);
  out = std::move(decoded);
  return true;
}

const json* find_named(const json& doc, const std::string& list, const std::string& name) {
  auto it = doc.find(list);
  if (it == doc.end() || !it->is_array()) return nullptr;
  for (const auto& entry : *it)
    if (entry.is_object() && entry.value("name", json()) == name) return &entry;
  return nullptr;
}

std::string string_field(const json& object, const std::string& key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  if (!it->is_string()) throw KubeConfigError(where + "." + key + ": must be a string");
  return it->get<std::string>();
}

// The content of `<name>-data` (base64) or of the file `<name>` (relative to the kubeconfig).
std::string data_or_file(const json& object, const std::string& name, const std::string& where, const fs::path& base) {
  std::string data = string_field(object, name + "-data", where);
  if (!data.empty()) {
    std::string decoded;
    if (!decode_base64(data, decoded)) throw KubeConfigError(where + "." + name + "-data: not valid base64");
    return decoded;
  }
  std::string file = string_field(object, name, where);
  if (file.empty()) return "";
  fs::path path = fs::path(file).is_absolute() ? fs::path(file) : base / file;
  std::string content;
  if (!read_file(path.string(), content)) throw KubeConfigError(where + "." + name + ": cannot read " + path.string());
  return content;
}

}  // namespace

std::string KubeConfig::bearer_token() const {
  if (token_file.empty()) return token;
  std::string content;
  if (!read_file(token_file, content)) throw KubeConfigError(source + ": cannot read the token file " + token_file);
  return trim(content);
}

void parse_server_url(const std::string& url, KubeConfig& config) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) throw KubeConfigError("server '" + url + "': expected https://host[:port]");
  config.scheme = url.substr(0, scheme_end);
  if (config.scheme != "https" && config.scheme != "http")
    throw KubeConfigError("server '" + url + "': scheme must be https or http");
  std::string rest = url.substr(scheme_end + 3);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  config.path_prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (!config.path_prefix.empty() && config.path_prefix.back() == '/') config.path_prefix.pop_back();
  std::string port_text;
  if (!authority.empty() && authority[0] == '[') {  // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string::npos) throw KubeConfigError("server '" + url + "': unclosed [ in the address");
    config.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw KubeConfigError("server '" + url + "': bad address");
      port_text = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    config.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (config.host.empty()) throw KubeConfigError("server '" + url + "': no host");
  config.port = config.scheme == "https" ? 443 : 80;
  if (!port_text.empty()) {
    char* end = nullptr;
    long port = std::strtol(port_text.c_str(), &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) throw KubeConfigError("server '" + url + "': bad port '" + port_text + "'");
    config.port = static_cast<int>(port);
  }
}

KubeConfig load_in_cluster_config(const InClusterPaths& paths) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    throw KubeConfigError("in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (is this running in a pod?)");
  KubeConfig config;
  config.source = "in-cluster";
  std::string host_text = host;
  // An IPv6 service address comes without brackets.
  std::string authority = host_text.find(':') != std::string::npos ? "[" + host_text + "]" : host_text;
  parse_server_url("https://" + authority + ":" + port, config);
  if (!read_file(paths.ca_file, config.ca_pem) || config.ca_pem.empty())
    throw KubeConfigError("in-cluster: cannot read the service-account CA " + paths.ca_file);
  config.token_file = paths.token_file;
  if (config.bearer_token().empty()) throw KubeConfigError("in-cluster: the token file " + paths.token_file + " is empty");
  return config;
}

KubeConfig load_kubeconfig(const std::string& path, const std::string& context_override) {
  std::string text;
  if (!read_file(path, text)) throw KubeConfigError("kubeconfig " + path + ": cannot read the file");
  std::vector<ManifestDocument> documents;
  try {
    documents = parse_manifests(text, path);
  } catch (const ManifestError& error) {
    throw KubeConfigError(std::string("kubeconfig ") + error.what());
  }
  if (documents.size() != 1 || !documents[0].object.is_object())
    throw KubeConfigError("kubeconfig " + path + ": expected one YAML mapping (kind: Config)");
  const json& doc = documents[0].object;
  const std::string where_file = "kubeconfig " + path;

  std::string context_name = context_override;
  if (context_name.empty()) context_name = string_field(doc, "current-context", where_file);
  if (context_name.empty()) throw KubeConfigError(where_file + ": no current-context and no context given");
  const json* context = find_named(doc, "contexts", context_name);
  if (!context || !context->contains("context") || !(*context)["context"].is_object())
    throw KubeConfigError(where_file + ": context '" + context_name + "' not found");
  const json& context_body = (*context)["context"];
  const std::string where_context = where_file + ": contexts[" + context_name + "].context";
  std::string cluster_name = string_field(context_body, "cluster", where_context);
  std::string user_name = string_field(context_body, "user", where_context);

  const json* cluster = find_named(doc, "clusters", cluster_name);
  if (!cluster || !cluster->contains("cluster") || !(*cluster)["cluster"].is_object())
    throw KubeConfigError(where_file + ": cluster '" + cluster_name + "' (of context '" + context_name + "') not found");
  const json& cluster_body = (*cluster)["cluster"];
  const std::string where_cluster = where_file + ": clusters[" + cluster_name + "].cluster";
  const fs::path base = fs::path(path).parent_path();

  KubeConfig config;
  config.source = "kubeconfig " + path + ", context " + context_name;
  std::string server = string_field(cluster_body, "server", where_cluster);
  if (server.empty()) throw KubeConfigError(where_cluster + ".server: missing");
  try {
    parse_server_url(server, config);
  } catch (const KubeConfigError& error) {
    throw KubeConfigError(where_cluster + ".server: " + error.what());
  }
  config.ca_pem = data_or_file(cluster_body, "certificate-authority", where_cluster, base);
  if (auto it = cluster_body.find("insecure-skip-tls-verify"); it != cluster_body.end() && !it->is_null()) {
    if (!it->is_boolean()) throw KubeConfigError(where_cluster + ".insecure-skip-tls-verify: must be true or false");
    config.insecure_skip_tls_verify = it->get<bool>();
  }

  if (!user_name.empty()) {
    const json* user = find_named(doc, "users", user_name);
    if (!user) throw KubeConfigError(where_file + ": user '" + user_name + "' (of context '" + context_name + "') not found");
    const json user_body = user->value("user", json::object());
    if (!user_body.is_object()) throw KubeConfigError(where_file + ": users[" + user_name + "].user: must be a mapping");
    const std::string where_user = where_file + ": users[" + user_name + "].user";
    for (const char* plugin : {"exec", "auth-provider"})
      if (user_body.contains(plugin) && !user_body[plugin].is_null())
        throw KubeConfigError(where_user + "." + plugin + ": credential plugins are not supported; use a token or a client certificate");
    config.token = string_field(user_body, "token", where_user);
    std::string token_file = string_field(user_body, "tokenFile", where_user);
    if (!token_file.empty()) config.token_file = fs::path(token_file).is_absolute() ? token_file : (base / token_file).string();
    config.client_cert_pem = data_or_file(user_body, "client-certificate", where_user, base);
    config.client_key_pem = data_or_file(user_body, "client-key", where_user, base);
    if (config.client_cert_pem.empty() != config.client_key_pem.empty())
      throw KubeConfigError(where_user + ": client-certificate and client-key must be given together");
  }
  if (config.scheme == "http" && (!config.token.empty() || !config.token_file.empty() || !config.client_cert_pem.empty()))
    throw KubeConfigError(where_cluster + ".server: credentials are never sent over plain http; use https");
  return config;
}

}  // namespace gpuadmit::kube
