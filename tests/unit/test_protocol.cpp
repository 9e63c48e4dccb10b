// The control protocol's codec: JSON lines, one Schema per message. The control socket (server
// and client) is tested in test_control_socket.cpp, lbctl's parser and listings in
// test_lbctl.cpp.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "control/protocol.hpp"
#include "protocol_samples.hpp"

using namespace lb::ctl;
using namespace proto_samples;

namespace {

std::vector<Op> sample_ops() {
    std::vector<Op> ops(3);
    ops[0].kind = OpKind::AddService;
    ops[0].has_service = true;
    ops[0].proto = 17;
    ops[0].vip = 0xC633640A;
    ops[0].port = 53;
    ops[0].scheduler = "sh";
    ops[0].sched_flags = "sh-port";
    ops[0].persistence = 300;
    ops[0].persist_mask = 0xFFFFFF00;
    ops[1].kind = OpKind::AddReal;
    ops[1].has_service = true;
    ops[1].vip = 1;
    ops[1].port = 80;
    ops[1].real_addr = 0x0A0A0002;
    ops[1].real_port = 8080;
    ops[1].forward = 1;
    ops[1].weight = 65535;
    ops[1].u_threshold = 100;
    ops[1].l_threshold = 50;
    ops[2].kind = OpKind::SetTimeout;
    ops[2].tcp = 900;
    ops[2].tcpfin = 120;
    ops[2].udp = kU32Max;
    return ops;
}

ConnEntry sample_conn() {
    ConnEntry e;
    e.proto = 6;
    e.client = ip(198, 51, 100, 2);
    e.vip = ip(198, 51, 100, 10);
    e.real = ip(10, 10, 0, 2);
    e.cport = 40000;
    e.vport = 80;
    e.rport = 8080;
    e.forward = 2;
    e.state = "ESTABLISHED";
    e.expire_s = 899;
    return e;
}

Workers sample_workers() {
    Workers ws;
    ws.mbufs_total = 65535;
    ws.mbufs_in_use = 1024;
    WorkerStatus w;
    w.lcore = 1;
    w.rx = 10;
    w.table_capacity = kU64Max;
    w.drops = {{"no_service", 3}, {"malformed", 0}};
    w.counters = {{"arp_replies", 2}, {"neigh_entries", kU64Max}};
    ws.workers = {w, WorkerStatus{}};
    PortStatus p;
    p.port = 1;
    p.name = "net_af_packet1";
    p.ipackets = 1;
    p.opackets = 2;
    p.ibytes = 3;
    p.obytes = 4;
    p.imissed = 5;
    p.ierrors = 6;
    p.rx_nombuf = 7;
    p.oerrors = 8;
    p.rx_ring_drops = 9;
    ws.ports = {p, PortStatus{}};
    ws.ports[1].rx_ring_drops = kU64Max;
    return ws;
}

// Every line the tests cut and mutate: each message, with its lists and strings.
std::vector<std::string> sample_lines() {
    return {line_of(encode(sample_status())), line_of(encode(Apply{sample_ops()})),
            line_of(encode(sample_workers())), line_of(encode(sample_conn())),
            line_of(encode(WriteConfig{"/etc/lb/lb.conf"})), line_of(encode(GetStatus{})),
            line_of(encode(Error{"no \"such\" service"})), line_of(encode(ConnsEnd{7}))};
}

// Decodes the line as a request and as a reply: each returns or throws ProtocolError.
size_t decodes_or_rejects(std::string_view line) {
    size_t decoded = 0;
    for (int side = 0; side < 2; ++side) {
        try {
            side == 0 ? (void)decode_request(line) : (void)decode_reply(line);
            ++decoded;
        } catch (const VersionError&) {  // a mutated version: said so, not "malformed"
        } catch (const ProtocolError& e) {
            CHECK(std::string(e.what()).find("malformed") != std::string::npos);
        }
    }
    return decoded;
}

std::string request_error(std::string_view line) {
    try {
        decode_request(line);
    } catch (const ProtocolError& e) {
        return e.what();
    }
    FAIL("decoded: " << line);
    return "";
}

std::string reply_error(std::string_view line) {
    try {
        decode_reply(line);
    } catch (const ProtocolError& e) {
        return e.what();
    }
    FAIL("decoded: " << line);
    return "";
}

}  // namespace

TEST_CASE("status round trip: several services, max values, empty lists", "[protocol]") {
    for (const Status& s : {sample_status(), extreme_status(), Status{}}) {
        check_same(reply_as<Status>(line_of(encode(s))), s);
    }
}

TEST_CASE("a line is the message's name, the version, then its fields", "[protocol]") {
    CHECK(encode(GetStatus{}) == "{\"cmd\":\"status\",\"version\":4}\n");
    CHECK(encode(WriteConfig{"/x"}) ==
          "{\"cmd\":\"write-config\",\"version\":4,\"path\":\"/x\"}\n");
    CHECK(encode(Ok{"wrote /x"}) == "{\"type\":\"ok\",\"version\":4,\"message\":\"wrote /x\"}\n");
    CHECK(encode(sample_conn()) ==
          "{\"type\":\"conn\",\"version\":4,\"proto\":\"tcp\",\"template\":false,"
          "\"client\":\"198.51.100.2\",\"cport\":40000,\"vip\":\"198.51.100.10\",\"vport\":80,"
          "\"real\":\"10.10.0.2\",\"rport\":8080,\"forward\":\"dr\",\"state\":\"ESTABLISHED\","
          "\"expire\":899}\n");
    CHECK(encode(ConnsBegin{12}) == "{\"type\":\"connections\",\"version\":4,\"total\":12}\n");

    // By hand: the version may be left out or come first; whitespace anywhere between tokens.
    CHECK(std::holds_alternative<GetStatus>(decode_request("{\"cmd\":\"status\"}")));
    CHECK(std::holds_alternative<GetStatus>(decode_request("{\"version\":4,\"cmd\":\"status\"}")));
    CHECK(std::holds_alternative<GetWorkers>(
        decode_request(" \t{ \"cmd\" : \"workers\" , \"version\" : 4 }\r ")));
    CHECK(request_as<WriteConfig>("{\"cmd\":\"write-config\"}").path.empty());
    CHECK(request_as<Apply>("{\"cmd\":\"apply\",\"ops\":[]}").ops.empty());
    CHECK(name_of(decode_request("{\"cmd\":\"connections\"}")) == "connections");
    CHECK(name_of(Reply{ConnsEnd{}}) == "end");
}

TEST_CASE("every truncation of a valid line is rejected", "[protocol]") {
    for (const std::string& line : sample_lines()) {
        for (size_t n = 0; n < line.size(); ++n) {
            INFO(line.substr(0, n));
            CHECK(decodes_or_rejects(std::string_view(line).substr(0, n)) == 0);
        }
    }
}

TEST_CASE("trailing bytes are rejected, trailing whitespace is not", "[protocol]") {
    const std::string line = line_of(encode(sample_status()));
    CHECK_THAT(reply_error(line + "x"), Catch::Contains("trailing characters"));
    CHECK_THAT(reply_error(line + line), Catch::Contains("trailing characters"));
    CHECK_NOTHROW(reply_as<Status>(line + " \r"));
    CHECK_THAT(request_error("{\"cmd\":\"status\"},"), Catch::Contains("trailing"));
}

TEST_CASE("other versions, unknown messages and bad JSON are refused, naming why",
          "[protocol]") {
    SECTION("another version") {
        for (const char* line : {"{\"cmd\":\"status\",\"version\":3}",
                                 "{\"version\":5,\"cmd\":\"status\"}",
                                 "{\"cmd\":\"frobnicate\",\"version\":5,\"x\":[1]}"}) {
            INFO(line);
            CHECK_THROWS_AS(decode_request(line), VersionError);
        }
        try {
            decode_reply("{\"type\":\"status\",\"version\":3,\"services\":7}");
            FAIL("decoded");
        } catch (const VersionError& e) {
            CHECK(e.version() == 3);
            CHECK_THAT(e.what(), Catch::Contains("version 3, this side speaks 4"));
        }
        CHECK(version_mismatch(4, 3) == "lb speaks control protocol 4; this lbctl speaks "
                                        "protocol 3 and is too old: use the lbctl that comes "
                                        "with this lb");
        CHECK_THAT(version_mismatch(4, 5), Catch::Contains("protocol 5 and is too new"));
    }
    SECTION("unknown or misplaced names") {
        CHECK_THAT(request_error("{\"cmd\":\"frobnicate\"}"),
                   Catch::Contains("unknown cmd \"frobnicate\""));
        CHECK_THAT(request_error("{\"cmd\":\"frobnicate\",\"version\":4}"),
                   Catch::Contains("unknown cmd"));
        CHECK_THAT(reply_error("{\"type\":\"status!\",\"version\":4}"),
                   Catch::Contains("unknown type"));
        CHECK_THAT(request_error("{\"type\":\"status\"}"),
                   Catch::Contains("first field must be \"cmd\", not \"type\""));
        CHECK_THAT(request_error("{\"version\":4}"), Catch::Contains("expected ','"));
        CHECK_THAT(request_error("{}"), Catch::Contains("expected a string"));
        CHECK_THAT(request_error("{\"cmd\":4}"), Catch::Contains("expected a string, got 4"));
    }
    SECTION("fields unknown, missing, repeated") {
        CHECK_THAT(request_error("{\"cmd\":\"status\",\"verbose\":true}"),
                   Catch::Contains("unknown field \"verbose\""));
        CHECK_THAT(request_error("{\"cmd\":\"apply\"}"), Catch::Contains("missing field \"ops\""));
        CHECK_THAT(request_error("{\"cmd\":\"status\",\"version\":4,\"version\":4}"),
                   Catch::Contains("\"version\" given twice"));
        CHECK_THAT(reply_error("{\"type\":\"end\",\"count\":1,\"count\":2}"),
                   Catch::Contains("\"count\" given twice"));
        std::string conn = line_of(encode(sample_conn()));
        conn.replace(conn.find(",\"rport\":8080"), 13, "");
        CHECK_THAT(reply_error(conn), Catch::Contains("missing field \"rport\""));
        CHECK_THAT(reply_error("{\"type\":\"status\",\"conn_capacity\":1,\"tcp_timeout\":1,"
                               "\"tcpfin_timeout\":1,\"udp_timeout\":1,\"services\":[{}]}"),
                   Catch::Contains("field services[0]: missing field \"proto\""));
    }
    SECTION("not JSON, or not a message") {
        CHECK_THAT(request_error(""), Catch::Contains("expected '{', got the end of the line"));
        CHECK_THAT(request_error("GET / HTTP/1.0"), Catch::Contains("expected '{', got GET"));
        CHECK_THAT(request_error("[\"cmd\",\"status\"]"), Catch::Contains("expected '{'"));
        CHECK_THAT(request_error("{\"cmd\":\"status\""), Catch::Contains("expected '}'"));
        CHECK_THAT(request_error("{'cmd':'status'}"), Catch::Contains("expected a string"));
        CHECK_THAT(request_error("{\"cmd\" \"status\"}"), Catch::Contains("expected ':'"));
    }
}

TEST_CASE("absurd counts, long strings, bad numbers and unknown names are refused", "[protocol]") {
    SECTION("lists over their bound: refused to encode and to decode") {
        Workers many;
        many.ports.resize(kMaxPortEntries + 1);
        CHECK_THROWS_WITH(encode(many), Catch::Contains("field ports: 1025 elements"));
        many.ports.resize(kMaxPortEntries);
        std::string line = line_of(encode(many));
        CHECK(reply_as<Workers>(line).ports.size() == kMaxPortEntries);
        line.insert(line.rfind(']'), ",{\"port\":0,\"name\":\"\",\"ipackets\":0,\"opackets\":0,"
                                         "\"ibytes\":0,\"obytes\":0,\"imissed\":0,\"ierrors\":0,"
                                         "\"rx_nombuf\":0,\"oerrors\":0,\"rx_ring_drops\":0}");
        CHECK_THAT(reply_error(line), Catch::Contains("field ports[1024]: more than 1024"));
        std::string ops = "{\"cmd\":\"apply\",\"ops\":[";
        const std::string one = line_of(encode(Apply{{Op{}}}));
        const std::string op = one.substr(one.find('[') + 1, one.rfind(']') - one.find('[') - 1);
        for (uint32_t i = 0; i <= kMaxOps; ++i) {
            ops += (i != 0 ? "," : "") + op;
        }
        CHECK_THAT(request_error(ops + "]}"), Catch::Contains("more than 32768 elements"));
    }
    SECTION("strings longer than the limit") {
        const std::string at_limit(kMaxString, 'a');
        CHECK(reply_as<Error>(line_of(encode(Error{at_limit}))).message == at_limit);
        CHECK_THROWS_WITH(encode(Error{at_limit + "a"}),
                          Catch::Contains("cannot encode field message: 4097 bytes"));
        CHECK_THAT(reply_error("{\"type\":\"ok\",\"message\":\"" + at_limit + "a\"}"),
                   Catch::Contains("field message: a string longer than the limit of 4096"));
        // Escapes count by what they stand for.
        std::string escaped;
        for (uint32_t i = 0; i <= kMaxString; ++i) {
            escaped += "\\n";
        }
        CHECK_THAT(reply_error("{\"type\":\"ok\",\"message\":\"" + escaped + "\"}"),
                   Catch::Contains("longer than the limit"));
        Status s;
        s.services.push_back(service(6, 1, 80, std::string(kMaxString + 1, 'r'), 0, {}, {}));
        CHECK_THROWS_WITH(encode(s), Catch::Contains("field scheduler"));
        // Bytes that are not UTF-8 count as the U+FFFD (3 bytes) each is written as.
        const std::string odd(kMaxString / 3, '\xff');
        CHECK(reply_as<Error>(line_of(encode(Error{odd}))).message.size() == odd.size() * 3);
        CHECK_THROWS_WITH(encode(Error{odd + "\xff"}),
                          Catch::Contains("4098 bytes, more than the limit"));
    }
    SECTION("unknown protocol, forward method or operation") {
        Status s;
        s.services.push_back(service(1, 1, 80, "rr", 0, {}, {}));
        CHECK_THROWS_WITH(encode(s), Catch::Contains("field proto: no name for the value 1"));
        s.services[0].proto = 17;
        s.services[0].reals.push_back(real(2, 80, 3, 1, 0, 0, {}));
        CHECK_THROWS_WITH(encode(s), Catch::Contains("field forward: no name for the value 3"));
        std::string conn = line_of(encode(sample_conn()));
        std::string bad = conn;
        bad.replace(bad.find("\"tcp\""), 5, "\"sctp\"");
        CHECK_THAT(reply_error(bad), Catch::Contains("field proto: unknown value \"sctp\" (one "
                                                     "of: tcp, udp)"));
        bad = conn;
        bad.replace(bad.find("\"dr\""), 4, "\"fullnat\"");
        CHECK_THAT(reply_error(bad), Catch::Contains("one of: nat, tun, dr"));
        std::string op = line_of(encode(Apply{sample_ops()}));
        op.replace(op.find("\"add-real\""), 10, "\"add\"");
        CHECK_THAT(request_error(op), Catch::Contains("field ops[1].kind: unknown value \"add\""));
    }
    SECTION("numbers: out of range, negative, fractions, leading zeros, not numbers") {
        const std::string conn = line_of(encode(sample_conn()));
        auto with_cport = [&](const std::string& v) {
            std::string s = conn;
            s.replace(s.find("40000"), 5, v);
            return reply_error(s);
        };
        CHECK_THAT(with_cport("65536"), Catch::Contains("field cport: 65536 is out of range "
                                                        "(at most 65535)"));
        CHECK_THAT(with_cport("99999999999999999999999"), Catch::Contains("out of range"));
        CHECK_THAT(with_cport("-1"), Catch::Contains("a negative number, -1"));
        CHECK_THAT(with_cport("1.5"), Catch::Contains("not a whole number, 1.5"));
        CHECK_THAT(with_cport("1e3"), Catch::Contains("not a whole number"));
        CHECK_THAT(with_cport("080"), Catch::Contains("a leading zero"));
        CHECK_THAT(with_cport("\"80\""), Catch::Contains("expected a number, got \"80\""));
        CHECK_THAT(with_cport("null"), Catch::Contains("expected a number, got null"));
        CHECK_THAT(with_cport("true"), Catch::Contains("expected a number"));
        std::string s = conn;
        s.replace(s.find("false"), 5, "0");
        CHECK_THAT(reply_error(s), Catch::Contains("field template: expected true or false"));
        CHECK(reply_as<ConnsEnd>("{\"type\":\"end\",\"count\":18446744073709551615}").count ==
              kU64Max);
        CHECK_THAT(reply_error("{\"type\":\"end\",\"count\":18446744073709551616}"),
                   Catch::Contains("out of range"));
    }
    SECTION("addresses") {
        const std::string conn = line_of(encode(sample_conn()));
        for (const char* bad : {"1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "",
                                "a.b.c.d", "1.2.3.4 ", "1234.1.1.1"}) {
            INFO(bad);
            std::string s = conn;
            s.replace(s.find("198.51.100.2"), 12, bad);
            CHECK_THAT(reply_error(s), Catch::Contains("field client: \"") &&
                                           Catch::Contains("\" is not an IPv4 address"));
        }
        CHECK(reply_as<ConnEntry>(line_of(encode(ConnEntry{6, false, kU32Max, 0, 1, 0, 0, 0, 0,
                                                           "", 0})))
                  .client == kU32Max);
    }
}

TEST_CASE("strings: escapes both ways, UTF-8 kept, bytes that are not UTF-8 replaced",
          "[protocol]") {
    const std::string text = std::string("q\"b\\s/ \b\f\n\r\t\x01\x1f ") + "\xc3\xa9\xe2\x82\xac" +
                             "\xf0\x9f\x98\x80" + std::string(1, '\0') + "end";
    const std::string line = line_of(encode(Error{text}));
    CHECK(line.find("\\\"b\\\\s/ \\b") == std::string::npos);  // \b is written as \u0008
    CHECK(line.find("\\u0008\\u000c\\n\\r\\t\\u0001\\u001f") != std::string::npos);
    CHECK(reply_as<Error>(line).message == text);
    CHECK(nlohmann::json::parse(line)["message"] == text);

    // Not UTF-8 (a lone continuation byte, a cut sequence, an overlong form, a surrogate):
    // each byte becomes U+FFFD, so that the line stays JSON.
    const std::string odd = "a\x80" "b\xe2\x82" "c\xc0\xaf" "d\xed\xa0\x80";
    const std::string back = reply_as<Error>(line_of(encode(Error{odd}))).message;
    CHECK(back == "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD"
                  "d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK_NOTHROW(nlohmann::json::parse(line_of(encode(Error{odd}))));

    auto message = [](const std::string& json_string) {
        return reply_as<Error>("{\"type\":\"error\",\"message\":" + json_string + "}").message;
    };
    CHECK(message("\"\\u00e9\\u20AC\\ud83d\\ude00\\/\"") ==
          "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/");
    CHECK(message("\"\\u0000\"") == std::string(1, '\0'));
    for (const char* bad : {"\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83dx\"", "\"\\u12\"", "\"\\x41\"",
                            "\"a\x01\"", "\"a\nb\"", "\"\xff\"", "\"\xc3\"", "\"abc"}) {
        INFO(bad);
        CHECK_THROWS_AS(message(bad), ProtocolError);
    }
}

TEST_CASE("random and mutated lines either decode or throw ProtocolError", "[protocol]") {
    std::mt19937_64 rng(20240611);
    const std::vector<std::string> valid = sample_lines();
    const std::string alphabet = "{}[]:,\"\\ 0123456789aeflnrstuv.-";
    size_t decoded = 0;
    for (int iter = 0; iter < 6000; ++iter) {
        std::string buf;
        switch (iter % 4) {
            case 0:  // pure noise
                buf.resize(rng() % 300);
                for (char& b : buf) {
                    b = char(rng());
                }
                break;
            case 1:  // JSON-ish noise
                buf.resize(rng() % 300);
                for (char& b : buf) {
                    b = alphabet[rng() % alphabet.size()];
                }
                break;
            default: {  // a valid line with a few bytes changed, and a random cut
                buf = valid[rng() % valid.size()];
                for (int k = int(rng() % 4) + 1; k > 0; --k) {
                    buf[rng() % buf.size()] =
                        rng() % 2 == 0 ? char(rng()) : alphabet[rng() % alphabet.size()];
                }
                if (rng() % 3 == 0) {
                    buf.resize(rng() % (buf.size() + 1));
                }
                break;
            }
        }
        decoded += decodes_or_rejects(buf);
    }
    CHECK(decoded > 0);  // the mutations do reach the end of the decoder sometimes
}

TEST_CASE("operations, connections and workers round-trip", "[protocol]") {
    const std::vector<Op> ops = sample_ops();
    const std::vector<Op> back = request_as<Apply>(line_of(encode(Apply{ops}))).ops;
    REQUIRE(back.size() == 3);
    CHECK(back[0].kind == OpKind::AddService);
    CHECK(back[0].has_service);
    CHECK(back[0].proto == 17);
    CHECK(back[0].vip == 0xC633640A);
    CHECK(back[0].port == 53);
    CHECK(back[0].scheduler == "sh");
    CHECK(back[0].sched_flags == "sh-port");
    CHECK(back[0].persistence == 300);
    CHECK(back[0].persist_mask == 0xFFFFFF00);
    CHECK(back[1].real_addr == 0x0A0A0002);
    CHECK(back[1].real_port == 8080);
    CHECK(back[1].forward == 1);
    CHECK(back[1].weight == 65535);
    CHECK(back[1].u_threshold == 100);
    CHECK(back[1].l_threshold == 50);
    CHECK(back[2].kind == OpKind::SetTimeout);
    CHECK(back[2].tcp == 900);
    CHECK(back[2].tcpfin == 120);
    CHECK(back[2].udp == kU32Max);
    CHECK(encode(Apply{back}) == encode(Apply{ops}));

    ConnEntry t = sample_conn();
    t.is_template = true;
    t.proto = 17;
    t.state = "NONE";
    for (const ConnEntry& e : {sample_conn(), t}) {
        const ConnEntry b = reply_as<ConnEntry>(line_of(encode(e)));
        CHECK(b.proto == e.proto);
        CHECK(b.is_template == e.is_template);
        CHECK((std::vector<uint32_t>{b.client, b.vip, b.real}) ==
              std::vector<uint32_t>{e.client, e.vip, e.real});
        CHECK((std::vector<uint16_t>{b.cport, b.vport, b.rport}) ==
              std::vector<uint16_t>{e.cport, e.vport, e.rport});
        CHECK(b.forward == e.forward);
        CHECK(b.state == e.state);
        CHECK(b.expire_s == e.expire_s);
    }
    CHECK(reply_as<ConnsBegin>(line_of(encode(ConnsBegin{kU64Max}))).total == kU64Max);

    const Workers ws = sample_workers();
    const Workers wb = reply_as<Workers>(line_of(encode(ws)));
    CHECK(wb.mbufs_total == 65535);
    CHECK(wb.mbufs_in_use == 1024);
    REQUIRE(wb.workers.size() == 2);
    CHECK(wb.workers[0].lcore == 1);
    CHECK(wb.workers[0].rx == 10);
    CHECK(wb.workers[0].table_capacity == kU64Max);
    CHECK(wb.workers[0].drops == ws.workers[0].drops);
    CHECK(wb.workers[0].counters == ws.workers[0].counters);
    REQUIRE(wb.ports.size() == 2);
    const PortStatus& p = wb.ports[0];
    CHECK(p.port == 1);
    CHECK(p.name == "net_af_packet1");
    CHECK((std::vector<uint64_t>{p.ipackets, p.opackets, p.ibytes, p.obytes, p.imissed,
                                 p.ierrors, p.rx_nombuf, p.oerrors, p.rx_ring_drops}) ==
          std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(p.rx_lost() == 5 + 6 + 7 + 9);
    CHECK(wb.ports[1].rx_ring_drops == kU64Max);
    CHECK(encode(wb) == encode(ws));

    CHECK(request_as<WriteConfig>(line_of(encode(WriteConfig{"/tmp/a b.conf"}))).path ==
          "/tmp/a b.conf");
    CHECK(reply_as<Ok>(line_of(encode(Ok{}))).message.empty());
}

TEST_CASE("nlohmann reads what lb writes, and lb reads what nlohmann writes", "[protocol]") {
    for (const std::string& line : sample_lines()) {
        INFO(line);
        const auto j = nlohmann::ordered_json::parse(line);
        CHECK(j.contains("version"));
        CHECK(j["version"] == kProtoVersion);
        // Written again by another writer: \u escapes for everything not ASCII, the same keys
        // in the same order; it reads back to the same message.
        const std::string again = j.dump(-1, ' ', true);
        const bool request = j.contains("cmd");
        if (request) {
            CHECK(std::visit([](const auto& m) { return encode(m); }, decode_request(again)) ==
                  line + "\n");
        } else {
            CHECK(std::visit([](const auto& m) { return encode(m); }, decode_reply(again)) ==
                  line + "\n");
        }
    }
    const auto s = nlohmann::json::parse(line_of(encode(extreme_status())));
    CHECK(s["services"][0]["reals"][0]["out_bytes"] == kU64Max);
    CHECK(s["services"][0]["vip"] == "255.255.255.255");
    CHECK(s["services"][1]["proto"] == "udp");
}

TEST_CASE("an lbctl of the binary protocol gets an Error frame of its own version",
          "[protocol]") {
    const std::string v3 = std::string("LBC1\x03\x00\x01\x00\x00\x00\x00\x00", 12);
    CHECK(legacy_version(v3) == 3);
    CHECK(legacy_version(std::string("LBC1\x02\x00", 6)) == 2);
    CHECK(legacy_version("LBC1") == 3);  // the version not seen yet
    const std::string frame = legacy_refusal(v3);
    const std::string msg = version_mismatch(kProtoVersion, 3);
    REQUIRE(frame.size() == 12 + 4 + msg.size());
    CHECK(frame.substr(0, 4) == "LBC1");
    CHECK(frame.substr(4, 4) == std::string("\x03\x00\xc7\x00", 4));  // version 3, Error (199)
    const auto le32 = [&](size_t at) {
        return uint32_t(uint8_t(frame[at])) | uint32_t(uint8_t(frame[at + 1])) << 8 |
               uint32_t(uint8_t(frame[at + 2])) << 16 | uint32_t(uint8_t(frame[at + 3])) << 24;
    };
    CHECK(le32(8) == 4 + msg.size());
    CHECK(le32(12) == msg.size());
    CHECK(frame.substr(16) == msg);
    CHECK(legacy_refusal(std::string("LBC1\x02\x00", 6)).substr(4, 2) ==
          std::string("\x02\x00", 2));
}
