#pragma once
// The part of HTTP/1.1 the metrics server speaks: the head of a request read from the front of
// a buffer (what Prometheus, curl and people send), and the status line and headers of a
// response. No sockets here: metrics_server.cpp does the I/O.
#include <cstddef>
#include <string>
#include <string_view>

namespace lb::ctl {

inline constexpr size_t kHttpMaxHead = 8192;  // request line and headers, the blank line apart
inline constexpr size_t kHttpMaxBody = 4096;  // a request body (read and ignored)
inline constexpr std::string_view kHttpTextType = "text/plain; charset=utf-8";

struct HttpRequest {
    bool complete = false;     // false: wait for more bytes
    size_t length = 0;         // of the head and the body, once complete
    int status = 0;            // != 0: answer with this error status and close
    std::string method, path;  // the path without its query
    bool keep_alive = true;    // HTTP/1.1 unless "Connection: close"; 1.0 if "keep-alive"
};

// Parses the request at the front of `in` (more may follow it: pipelining). Errors: 400 for a
// malformed request line, header or Content-Length, 413 for a body over kHttpMaxBody, 431 for
// a head over kHttpMaxHead (also while it is still incomplete), 501 for Transfer-Encoding (no
// chunked bodies), 505 for a version other than HTTP/1.0 and HTTP/1.1. Lines may end in CRLF
// or LF.
HttpRequest parse_http_request(std::string_view in);

// The reason phrase of the statuses the server sends ("Error" for others).
const char* http_reason(int status);

// "HTTP/1.1 STATUS REASON", Allow (on a 405), Content-Type, Content-Length, "Connection: close"
// when `close`, and the blank line.
std::string http_response_head(int status, std::string_view type, size_t length, bool close);

}  // namespace lb::ctl
