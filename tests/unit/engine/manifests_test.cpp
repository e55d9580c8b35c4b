// Reading manifests document by document (engine/manifests.cpp over YamlJsonReader in
// engine/input_limits.cpp): JSON built straight from libyaml's events must be the JSON that the
// YAML::Node tree gives (the reference: YAML::LoadAll, then yaml_to_json, which the suites and the
// config still use), for every YAML file of the project and the public fixtures and for random
// documents full of anchors, aliases, tags and quoting; and a reader of a large file holds one
// document at a time.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "engine/input_limits.h"
#include "engine/manifests.h"

namespace gpuadmit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Read {
  int line;
  json object;
};

std::vector<Read> reference(const std::string& text) {
  std::vector<Read> out;
  for (const YAML::Node& node : YAML::LoadAll(text)) {
    if (node.IsNull() || !node.IsDefined()) continue;
    out.push_back({node.Mark().line + 1, yaml_to_json(node, "reference")});
  }
  return out;
}

std::vector<Read> streamed(const std::string& text) {
  std::vector<Read> out;
  parse_manifests(text, "t.yaml", [&](ManifestDocument&& document) {
    out.push_back({document.line, std::move(document.object)});
  });
  return out;
}

void expect_same(const std::string& text, const std::string& what) {
  std::vector<Read> expected = reference(text);
  std::vector<Read> actual;
  try {
    actual = streamed(text);
  } catch (const ManifestError& error) {
    ADD_FAILURE() << what << ": " << error.what();
    return;
  }
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(actual[i].object, expected[i].object) << what << ", document " << i;
    EXPECT_EQ(actual[i].line, expected[i].line) << what << ", document " << i;
  }
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_kubernetes_yaml(const std::string& text) {
  // Lists of documents whose roots are maps: what parse_manifests accepts (suites and configs are
  // maps too, so they take part; a file whose root is a sequence is not a manifest).
  try {
    for (const YAML::Node& node : YAML::LoadAll(text))
      if (!node.IsNull() && node.IsDefined() && !node.IsMap()) return false;
  } catch (const YAML::Exception&) {
    return false;
  }
  return true;
}

TEST(ManifestReader, EveryYamlFileReadsAsTheNodeTreeReadsIt) {
  std::vector<fs::path> roots = {fs::path(GPUADMIT_SOURCE_DIR) / "manifests", fs::path(GPUADMIT_SOURCE_DIR) / "policies",
                                 fs::path(GPUADMIT_SOURCE_DIR) / "tests"};
  if (fs::exists(fs::path(GPUADMIT_SHARED_DIR) / "fixtures")) roots.push_back(fs::path(GPUADMIT_SHARED_DIR) / "fixtures");
  std::size_t files = 0;
  for (const fs::path& root : roots)
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".yaml" && ext != ".yml")) continue;
      // The fuzz corpora hold hostile YAML that the reference itself cannot read (it loops).
      if (entry.path().string().find("/tests/fuzz/") != std::string::npos) continue;
      const std::string text = read(entry.path());
      if (!is_kubernetes_yaml(text)) continue;
      expect_same(text, entry.path().string());
      ++files;
    }
  EXPECT_GT(files, 50u);
}

TEST(ManifestReader, AnchorsAliasesTagsAndKeysReadAsTheNodeTreeReadsThem) {
  for (const std::string text : {
           "a: &x {b: [1, 2, &y three]}\nc: *x\nd: *y\n",
           "&k key: 1\n*k : 2\n",                              // an aliased key: its text
           "a: &n 5\n*n : six\n",                              // a number as a key stays its text
           "a: !!str 5\nb: !!int '7'\nc: !custom x\nd: '5'\ne: \"yes\"\nf: yes\ng: ~\nh:\ni: !!null ''\n",
           "a: &e\nb: *e\n",                                   // an anchored empty value is null
           "x: 1\nx: 2\n",                                     // the last of a repeated key wins
           "---\n---\na: 1\n--- # c\n...\n---\nb: [ {c: d}, [e, [f]] ]\n",
           "a: |\n  line one\n  line two\nb: >-\n  folded\n  text\n",
           "? complex\n: value\n",
           "a: [&q {z: 1}, *q, *q]\n",
           "a: &x 1\nb: *x\nc: &x 2\nd: *x\n",                // an anchor defined again names the new value
           "a: !!str\nb: &t !!int\nc: *t\n",                  // an empty value is null; tagged, the tag's
           "%YAML 1.1\n---\na: 1\n",
       })
    expect_same(text, text);
}

// Random documents in flow style from tricky scalars, with anchors and aliases to anchors already
// complete, compared with the node tree's reading.
class RandomYaml {
 public:
  explicit RandomYaml(unsigned seed) : random_(seed) {}

  std::string document() {
    anchors_ = 0;
    completed_.clear();
    return "kind: R\nx: {" + entries(0) + "}\n";  // YAML: a text starting with '{' is read as JSON
  }

 private:
  std::string scalar() {
    static const std::vector<std::string> kScalars = {
        "yes", "No", "on", "1_000", "0x1F", "0o17", "~", "null", "1e3", ".5", "-2", "+3", "007", "text",
        "'quoted'", "\"1\"", "\"\"", "''", "!!str 5", "!!int 7", "!!bool true", "!!float 1", "!thing x",
        "\"two words\"", "a b", "true", "FALSE", "3.0"};
    return kScalars[random_() % kScalars.size()];
  }
  std::string value(int depth) {
    const unsigned pick = random_() % 10;
    if (pick < 2 && !completed_.empty()) return "*a" + std::to_string(completed_[random_() % completed_.size()]);
    const int anchor = random_() % 4 == 0 ? ++anchors_ : 0;
    std::string out = anchor ? "&a" + std::to_string(anchor) + " " : "";
    if (pick < 6 || depth > 4)
      out += scalar();
    else if (pick < 8)
      out += "[" + items(depth + 1) + "]";
    else
      out += "{" + entries(depth + 1) + "}";
    if (anchor) completed_.push_back(anchor);  // only now may an alias name it
    return out;
  }
  std::string items(int depth) {
    std::string out;
    for (unsigned i = 0, n = random_() % 4; i < n; ++i) out += (i ? ", " : "") + value(depth);
    return out;
  }
  std::string entries(int depth) {
    std::string out;
    for (unsigned i = 0, n = random_() % 5; i < n; ++i) {
      std::string key = scalar();
      if (key.starts_with("!") || key == "~" || key == "null") key = "k" + std::to_string(i);
      out += (i ? ", " : "") + key + ": " + value(depth);
    }
    return out;
  }

  std::mt19937 random_;
  int anchors_ = 0;
  std::vector<int> completed_;
};

TEST(ManifestReader, RandomDocumentsReadAsTheNodeTreeReadsThem) {
  for (unsigned seed = 1; seed <= 400; ++seed) {
    RandomYaml random(seed);
    // Anchors are numbered per file here; YAML's anchors hold within a document, and an alias to an
    // anchor of an earlier document is an error in both readers, so one document per text.
    expect_same(random.document(), "seed " + std::to_string(seed));
  }
}

TEST(ManifestReader, AnAliasInsideItsOwnAnchorIsRefused) {
  // The node tree would be a cycle; the reader refuses it instead of following it.
  for (const std::string text : {"a: &x [1, *x]\n", "a: &x {b: *x}\n"}) {
    try {
      parse_manifests(text, "cycle.yaml");
      ADD_FAILURE() << text;
    } catch (const ManifestError& error) {
      EXPECT_NE(std::string(error.what()).find("cycle.yaml:1:"), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("an alias refers to a value that contains it"), std::string::npos)
          << error.what();
    }
  }
}

TEST(ManifestReader, AnAliasWithoutItsAnchorIsRefused) {
  // Named nowhere, or only in an earlier document: anchors hold within their document.
  for (const auto& [text, line] : std::vector<std::pair<std::string, std::string>>{
           {"a: 1\nb: *nowhere\n", "alias.yaml:2:"}, {"a: &x 1\n---\nb: *x\n", "alias.yaml:3:"}}) {
    try {
      parse_manifests(text, "alias.yaml");
      ADD_FAILURE() << text;
    } catch (const ManifestError& error) {
      EXPECT_NE(std::string(error.what()).find(line), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("an alias names no anchor defined before it"), std::string::npos)
          << error.what();
    }
    EXPECT_THROW(reference(text), YAML::Exception) << text;  // the node tree refuses them too
  }
}

TEST(ManifestReader, NestedAnchorsCostTheirCopiesFromTheBudget) {
  // Every level anchored: copying each for its aliases is paid for, so the reading stays linear
  // (here: refused, as the values copied exceed what the text's size allows).
  std::string text = "a: ";
  const int levels = 900;
  for (int i = 0; i < levels; ++i) text += "&l" + std::to_string(i) + " [x, ";
  text += "x";
  for (int i = 0; i < levels; ++i) text += "]";
  text += "\n";
  EXPECT_THROW(parse_manifests(text, "nested.yaml"), ManifestError);
  // A few nested anchors are fine.
  EXPECT_EQ(parse_manifests("a: &o [&i [1], 2]\nb: *o\nc: *i\n", "ok.yaml").at(0).object["b"], json::parse("[[1], 2]"));
}

TEST(ManifestReader, DocumentsBeforeABadOneAreHandedOnFirst) {
  std::vector<std::string> names;
  try {
    parse_manifests("kind: A\n---\nkind: B\n---\nkind: [C\n", "partial.yaml",
                    [&](ManifestDocument&& document) { names.push_back(document.object["kind"]); });
    FAIL();
  } catch (const ManifestError& error) {
    EXPECT_TRUE(std::string(error.what()).starts_with("partial.yaml:")) << error.what();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"A", "B"}));
}

TEST(ManifestReader, DocumentsKeepTheirIndexAndLine) {
  const auto documents = parse_manifests("---\n# c\nkind: A\n---\n---\n\nkind: B\n", "lines.yaml");
  ASSERT_EQ(documents.size(), 2u);
  EXPECT_EQ(documents[0].document, 0);
  EXPECT_EQ(documents[0].line, 3);
  EXPECT_EQ(documents[1].document, 2);
  EXPECT_EQ(documents[1].line, 7);
}

}  // namespace
}  // namespace gpuadmit
