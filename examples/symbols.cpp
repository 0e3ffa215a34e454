// A symbol table that interns the identifiers of real text.
//
// A compiler front end (or any tokenizer) interns every identifier it reads, so equal names are
// one object and compare by address. The InternSet holds its symbols weakly: the symbols of a
// file whose scope has closed go away at the next collection, unless something kept them (here:
// a "global" table of the names seen in at least three files). Interning a name whose symbol
// died makes a new one.
//
//   build/…/examples/symbols [dir-or-file ...]     (default: /usr/share/common-licenses)
#include <cctype>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "weakgc/intern.hpp"
#include "weakgc/tables.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> inputs(int argc, char** argv) {
  std::vector<fs::path> roots;
  for (int i = 1; i < argc; ++i) roots.emplace_back(argv[i]);
  if (roots.empty()) roots.emplace_back("/usr/share/common-licenses");
  std::vector<fs::path> files;
  for (const fs::path& r : roots) {
    std::error_code ec;
    if (fs::is_regular_file(r, ec)) {
      files.push_back(r);
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(r, ec); !ec && it != fs::end(it);
         it.increment(ec))
      if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  return files;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Calls f(identifier) for every [A-Za-z_][A-Za-z0-9_]* in text.
template <class F>
void identifiers(const std::string& text, F&& f) {
  size_t i = 0, n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isalpha(c) || c == '_') {
      size_t j = i + 1;
      while (j < n && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
      f(std::string_view(text).substr(i, j - i));
      i = j;
    } else {
      ++i;
    }
  }
}

// How many files each symbol appeared in: a weak-key table, so it forgets dead symbols too.
struct FileCount : weakgc::GcObject {
  unsigned long files = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> files = inputs(argc, argv);
  if (files.empty()) {
    std::fprintf(stderr, "symbols: no input files\n");
    return 1;
  }
  weakgc::ArenaOptions options;
  options.trigger_bytes = 256 << 10;  // small: collections happen while files are read
  weakgc::Arena arena(options);
  weakgc::InternSet symbols(arena);
  weakgc::WeakKeyTable<weakgc::Symbol, FileCount> seen_in(arena);
  std::deque<weakgc::Root<weakgc::Symbol>> globals;  // names seen in >= 3 files: kept for good
  unsigned long tokens = 0, bytes = 0;

  std::printf("%-40s %8s %8s %9s %8s\n", "file", "tokens", "distinct", "symbols", "cycles");
  for (const fs::path& path : files) {
    std::string text = slurp(path);
    bytes += text.size();
    // The file's scope: its symbols stay alive while the file is being processed.
    std::deque<weakgc::Root<weakgc::Symbol>> scope;
    weakgc::WeakSet<weakgc::Symbol> in_file(arena);
    unsigned long file_tokens = 0;
    identifiers(text, [&](std::string_view id) {
      weakgc::Symbol* s = symbols.intern(id);
      ++file_tokens;
      if (in_file.insert(s)) {
        scope.emplace_back(arena, s);
        FileCount* c = seen_in.get(s);
        if (c == nullptr) {
          c = weakgc::make<FileCount>(arena);
          seen_in.put(s, c);
        }
        if (++c->files == 3) globals.emplace_back(arena, s);
      }
    });
    tokens += file_tokens;
    std::string name = path.filename().string();
    if (name.size() > 40) name = name.substr(0, 37) + "...";
    std::printf("%-40s %8lu %8zu %9zu %8llu\n", name.c_str(), file_tokens, scope.size(),
                symbols.size(), static_cast<unsigned long long>(arena.stats().cycles));
  }
  // Every file scope is closed: only the global names (and whatever a stale stack word pins)
  // survive a collection.
  arena.collect();
  size_t live = symbols.size();
  std::printf("\n%zu files, %lu bytes, %lu identifier tokens\n", files.size(), bytes, tokens);
  std::printf("symbols created: %llu; alive after the scopes closed: %zu (global names: %zu)\n",
              static_cast<unsigned long long>(symbols.symbols_created()), live, globals.size());
  // Identity: interning again returns the very same object for a live name.
  if (!globals.empty()) {
    weakgc::Symbol* g = globals.front().get();
    std::printf("intern(\"%s\") is the global symbol again: %s\n", g->c_str(),
                symbols.intern(g->view()) == g ? "yes" : "no");
  }
  unsigned long recreated_before = symbols.symbols_created();
  identifiers(slurp(files.front()), [&](std::string_view id) { (void)symbols.intern(id); });
  std::printf("re-reading %s created %llu new symbols (names whose symbol had died)\n",
              files.front().filename().c_str(),
              static_cast<unsigned long long>(symbols.symbols_created() - recreated_before));
  return 0;
}
