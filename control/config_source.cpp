// Config files read as untrusted input: stat before open (a device is never opened), open
// non-blocking (a FIFO that appeared since is not waited on), fstat again, read at most the
// size allowed. The @include expansion mirrors libconfig 1.5's scanner (lib/scanner.l): the
// directive `^[ \t]*@include[ \t]+"` in the initial state only, so not inside /* comments */,
// "strings" or after # and // on the same line; the file name takes \\ and \" escapes.
#include "control/config_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "control/config.hpp"

namespace lb::ctl {

namespace {

const char* file_kind(mode_t mode) {
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISBLK(mode)) {
        return "a block device";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    return "not a regular file";
}

[[noreturn]] void cannot_read(const std::string& path, const std::string& why) {
    throw ConfigError(path + ": cannot read: " + why);
}

void check_stat(const std::string& path, const struct stat& st, size_t max) {
    if (S_ISDIR(st.st_mode)) {
        cannot_read(path, std::strerror(EISDIR));  // "Is a directory", as read(2) would say
    }
    if (!S_ISREG(st.st_mode)) {
        cannot_read(path, std::string("not a regular file (") + file_kind(st.st_mode) +
                              "); a config file must be one");
    }
    if (st.st_size < 0 || uint64_t(st.st_size) > max) {
        cannot_read(path, std::to_string(st.st_size) + " bytes, more than the " +
                              std::to_string(max) + " a config may have");
    }
}

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace

std::string read_config_file(const std::string& path, size_t max) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        cannot_read(path, std::strerror(errno));
    }
    check_stat(path, st, max);
    // Non-blocking: if PATH was swapped for a FIFO since the stat, open does not wait for a
    // writer; fstat below then refuses it.
    const Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (fd.get() < 0) {
        cannot_read(path, std::strerror(errno));
    }
    if (::fstat(fd.get(), &st) != 0) {
        cannot_read(path, std::strerror(errno));
    }
    check_stat(path, st, max);
    // One byte more than the size allowed, to see a file that grew past it since the fstat.
    std::string text(std::min<size_t>(size_t(st.st_size), max) + 1, '\0');
    size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            cannot_read(path, std::strerror(errno));
        }
        if (n == 0) {
            break;
        }
        got += size_t(n);
        if (got == text.size() && got <= max) {
            text.resize(std::min(max + 1, text.size() * 2));  // it grew: read on, to the limit
        }
    }
    if (got > max) {
        cannot_read(path, "more than the " + std::to_string(max) + " bytes a config may have");
    }
    text.resize(got);
    return text;
}

std::string write_config_file(const std::string& path, const std::string& text) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        return std::string("it exists and is ") +
               (S_ISLNK(st.st_mode) ? "a symbolic link" : file_kind(st.st_mode)) +
               ", not a regular file";
    }
    const Fd fd(::open(
        path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
        0644));
    if (fd.get() < 0) {
        return std::strerror(errno);
    }
    if (::fstat(fd.get(), &st) != 0) {
        return std::strerror(errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return std::string("it is ") + file_kind(st.st_mode) + ", not a regular file";
    }
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            const int err = n < 0 ? errno : EIO;
            ::unlink(path.c_str());
            return std::strerror(err);
        }
        done += size_t(n);
    }
    if (::fsync(fd.get()) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        return std::strerror(err);
    }
    return "";
}

std::pair<const std::string&, int> ExpandedConfig::origin(int line) const {
    auto it = std::upper_bound(segments.begin(), segments.end(), line,
                               [](int l, const Segment& s) { return l < s.first_line; });
    if (it == segments.begin()) {
        return {files.at(0), line};
    }
    --it;
    return {files.at(it->file), it->file_line + (line - it->first_line)};
}

namespace {

class Expander {
public:
    explicit Expander(std::string include_dir) : include_dir_(std::move(include_dir)) {}

    ExpandedConfig run(const std::string& text, const std::string& name) {
        out_.files.push_back(name);
        add(text, 0, 0);
        return std::move(out_);
    }

private:
    enum class State { Normal, Comment, String };

    void segment(size_t file, int file_line) {
        out_.segments.push_back({out_line_, file, file_line});
    }

    void emit(std::string_view s) {
        if (out_.text.size() + s.size() > kMaxConfigBytes) {
            throw ConfigError(out_.files[0] + ": with its @include files, more than the " +
                              std::to_string(kMaxConfigBytes) + " bytes a config may have");
        }
        out_.text.append(s);
        out_line_ += int(std::count(s.begin(), s.end(), '\n'));
    }

    // `@include "` at text[i] (i at the start of a line): the position after the quote.
    static size_t directive_at(std::string_view text, size_t i) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) {
            ++i;
        }
        constexpr std::string_view kWord = "@include";
        if (text.substr(i, kWord.size()) != kWord) {
            return std::string_view::npos;
        }
        i += kWord.size();
        const size_t blanks = i;
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) {
            ++i;
        }
        if (i == blanks || i >= text.size() || text[i] != '"') {
            return std::string_view::npos;
        }
        return i + 1;
    }

    void include(const std::string& where, const std::string& name, int depth) {
        if (depth >= kMaxIncludeDepth) {
            throw ConfigError(where + ": @include \"" + name + "\": nested more than " +
                              std::to_string(kMaxIncludeDepth) + " deep (does it include itself?)");
        }
        if (++includes_ > kMaxIncludes) {
            throw ConfigError(where + ": more than " + std::to_string(kMaxIncludes) +
                              " @include directives");
        }
        if (name.empty()) {
            throw ConfigError(where + ": @include \"\": no file name");
        }
        const std::string path = name[0] == '/' ? name : include_dir_ + name;
        std::string text;
        try {
            text = read_config_file(path);
        } catch (const ConfigError& e) {
            throw ConfigError(where + ": @include \"" + name + "\": " + e.what());
        }
        out_.files.push_back(path);
        add(text, out_.files.size() - 1, depth + 1);
    }

    void add(std::string_view text, size_t file, int depth) {
        segment(file, 1);
        int line = 1;
        bool bol = true;  // at the start of a line, where flex's ^ matches
        size_t copied = 0;
        size_t i = 0;
        const size_t n = text.size();
        while (i < n) {
            const char c = text[i];
            if (c == '\n') {
                ++line;
                bol = true;
                ++i;
                continue;
            }
            if (state_ == State::Comment) {
                if (c == '*' && i + 1 < n && text[i + 1] == '/') {
                    state_ = State::Normal;
                    ++i;
                }
                ++i;
                bol = false;
                continue;
            }
            if (state_ == State::String) {
                if (c == '\\' && i + 1 < n && (text[i + 1] == '"' || text[i + 1] == '\\')) {
                    i += 2;
                } else {
                    state_ = c == '"' ? State::Normal : State::String;
                    ++i;
                }
                bol = false;
                continue;
            }
            if (bol) {
                if (const size_t after = directive_at(text, i); after != std::string_view::npos) {
                    const int at = line;
                    std::string name;
                    size_t j = after;
                    while (j < n && text[j] != '"') {
                        if (text[j] == '\\') {
                            if (j + 1 < n && (text[j + 1] == '\\' || text[j + 1] == '"')) {
                                name += text[j + 1];
                                ++j;
                            }
                        } else {
                            line += text[j] == '\n' ? 1 : 0;
                            name += text[j];
                        }
                        ++j;
                    }
                    const std::string where = out_.files[file] + ":" + std::to_string(at);
                    if (j >= n) {
                        throw ConfigError(where + ": @include: the file name has no closing \"");
                    }
                    emit(text.substr(copied, i - copied));
                    include(where, name, depth);
                    if (!out_.text.empty() && out_.text.back() != '\n') {
                        emit("\n");
                    }
                    i = j + 1;
                    copied = i;
                    segment(file, line);  // the rest of the directive's line
                    bol = false;
                    continue;
                }
            }
            bol = false;
            if (c == '/' && i + 1 < n && text[i + 1] == '*') {
                state_ = State::Comment;
                i += 2;
            } else if (c == '#' || (c == '/' && i + 1 < n && text[i + 1] == '/')) {
                while (i < n && text[i] != '\n') {
                    ++i;
                }
            } else if (c == '"') {
                state_ = State::String;
                ++i;
            } else {
                ++i;
            }
        }
        emit(text.substr(copied));
    }

    std::string include_dir_;
    ExpandedConfig out_;
    int out_line_ = 1;
    size_t includes_ = 0;
    State state_ = State::Normal;
};

}  // namespace

ExpandedConfig expand_includes(const std::string& text, const std::string& name,
                               const std::string& include_dir) {
    return Expander(include_dir).run(text, name);
}

}  // namespace lb::ctl
