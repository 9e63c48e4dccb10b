// HTTP/1.1 request heads and response heads for the metrics server (http.hpp).
#include "control/http.hpp"

#include <algorithm>
#include <cctype>

namespace lb::ctl {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

// Whether the comma-separated header value holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        const size_t comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) {
            return true;
        }
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    }
    return false;
}

// "METHOD TARGET VERSION" into r (method, path, keep_alive's default); false with r.status set
// if it is not one.
bool parse_request_line(std::string_view line, HttpRequest& r) {
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        r.status = 400;
        return false;
    }
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        r.status = version.substr(0, 5) == "HTTP/" ? 505 : 400;
        return false;
    }
    r.method = std::string(line.substr(0, sp1));
    r.path = std::string(target.substr(0, target.find('?')));
    r.keep_alive = version == "HTTP/1.1";
    return true;
}

// One header line (blank ones skipped); false with r.status set if the request is refused.
bool parse_header(std::string_view h, HttpRequest& r, size_t& body) {
    if (trim(h).empty()) {
        return true;
    }
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos) {
        r.status = 400;
        return false;
    }
    const std::string_view name = h.substr(0, colon);
    const std::string_view value = trim(h.substr(colon + 1));
    if (iequals(name, "Content-Length")) {
        if (value.empty() || value.size() > 9 ||
            !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            r.status = 400;
            return false;
        }
        body = std::stoul(std::string(value));
    } else if (iequals(name, "Transfer-Encoding")) {
        r.status = 501;  // no chunked request bodies: nothing here takes a body
        return false;
    } else if (iequals(name, "Connection")) {
        if (has_token(value, "close")) {
            r.keep_alive = false;
        } else if (has_token(value, "keep-alive")) {
            r.keep_alive = true;
        }
    }
    return true;
}

}  // namespace

HttpRequest parse_http_request(std::string_view in) {
    HttpRequest r;
    size_t end = in.find("\r\n\r\n");
    size_t sep = 4;
    if (const size_t lf = in.find("\n\n"); lf != std::string_view::npos && lf < end) {
        end = lf;
        sep = 2;
    }
    if (end == std::string_view::npos) {
        if (in.size() > kHttpMaxHead) {
            r.status = 431;
        }
        return r;
    }
    if (end > kHttpMaxHead) {
        r.status = 431;
        return r;
    }
    const std::string_view head = in.substr(0, end);
    size_t eol = head.find('\n');
    if (!parse_request_line(trim(head.substr(0, eol)), r)) {
        return r;
    }
    size_t body = 0;
    while (eol != std::string_view::npos) {
        const size_t start = eol + 1;
        eol = head.find('\n', start);
        const size_t len = eol == std::string_view::npos ? eol : eol - start;
        if (!parse_header(head.substr(start, len), r, body)) {
            return r;
        }
    }
    if (body > kHttpMaxBody) {
        r.status = 413;
        return r;
    }
    r.length = end + sep + body;
    r.complete = in.size() >= r.length;
    return r;
}

const char* http_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

std::string http_response_head(int status, std::string_view type, size_t length, bool close) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + http_reason(status) + "\r\n";
    if (status == 405) {
        h += "Allow: GET, HEAD\r\n";
    }
    h += "Content-Type: ";
    h += type;
    h += "\r\nContent-Length: " + std::to_string(length) + "\r\n";
    if (close) {
        h += "Connection: close\r\n";
    }
    h += "\r\n";
    return h;
}

}  // namespace lb::ctl
