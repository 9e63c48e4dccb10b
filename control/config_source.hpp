#pragma once
// The text of a config file and of every file it @includes, read without trusting them: only
// regular files, never a blocking open or read (a FIFO, a device, a symlink to /dev/zero are
// refused by name), at most kMaxConfigBytes in all. libconfig 1.5 opens @include files itself
// (with fopen, which blocks on a FIFO, and with no size limit); expand_includes() does its
// job instead, as its scanner would, and remembers where each line of the result came from so
// that messages still name the included file and its own line.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace lb::ctl {

inline constexpr size_t kMaxConfigBytes = 64u << 20;  // a config file, and all its files together
inline constexpr int kMaxIncludeDepth = 10;           // libconfig's own limit
inline constexpr size_t kMaxIncludes = 1024;          // @include directives in all

// Reads the whole of PATH if it is a regular file of at most `max` bytes; never blocks on
// what PATH turns out to be. Throws ConfigError("PATH: cannot read: why").
std::string read_config_file(const std::string& path, size_t max = kMaxConfigBytes);

// Writes `text` to PATH, a new or regular file (never a FIFO or a device, which could block
// or be clobbered; a symlink is not followed), and syncs it. Returns "" or why not: the errno
// text ("No such file or directory", "No space left on device") or what PATH is.
std::string write_config_file(const std::string& path, const std::string& text);

// A config with its @include directives replaced by the text of their files.
struct ExpandedConfig {
    std::string text;
    std::vector<std::string> files;  // files[0] is the name given for the top-level text

    // The file and line that line `line` of `text` came from.
    std::pair<const std::string&, int> origin(int line) const;

    struct Segment {
        int first_line = 1;  // in `text`
        size_t file = 0;     // index into files
        int file_line = 1;   // first_line's line in that file
    };
    std::vector<Segment> segments;  // by first_line
};

// Expands `text` (named `name` in messages): an @include directive, where libconfig 1.5's
// scanner sees one (`@include "FILE"` first on a line, outside comments and strings), is
// replaced by FILE's text, FILE taken relative to `include_dir` (a directory ending in '/', or
// "" for the current one) unless absolute. Nested up to kMaxIncludeDepth. Throws ConfigError
// "FILE:LINE: ..." naming the directive and the file it could not include, and why.
ExpandedConfig expand_includes(const std::string& text, const std::string& name,
                               const std::string& include_dir);

}  // namespace lb::ctl
