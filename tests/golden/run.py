#!/usr/bin/python3
"""Golden pcap tests (yanet's autotest, katran's fixtures): run lb on recorded frames, compare
what it transmits with what it must transmit, byte for byte.

    tests/golden/run.py [--lb PATH] [--keep] [NAME...]

Each test is a directory tests/golden/NNN_name/ with
    lb.conf   the config; its eal reads send0.pcap/send1.pcap and writes out0.pcap/out1.pcap
              through net_pcap vdevs, relative to the run directory; @RUNDIR@ stands for the
              run directory's absolute path (for the control socket)
    gen.py    writes send0.pcap (frames arriving on port 0, the outside), send1.pcap (port 1,
              the inside), expect0.pcap / expect1.pcap (frames lb must transmit on each port)
              and optionally expect.counters (`name value` lines) into the directory it is given
A config-error test has lb.conf and expect.check_error instead of gen.py: `lb -c lb.conf --check`
must exit 1, and its output must contain every non-empty line of expect.check_error (`#` starts
a comment line; @RUNDIR@ is replaced as in lb.conf).
For each test the runner runs gen.py into a fresh temporary directory (so nothing generated is
ever stale or committed), checks that `lb -c lb.conf --check` accepts the config, runs
`lb -c lb.conf --idle-exit 500 --stats-file counters.txt` there,
compares out0/out1 with expect0/expect1 packet by packet (bytes only: net_pcap writes its own
timestamps) and the counters with expect.counters. NAME selects tests by directory name or
its NNN prefix. Exit status 1 if any test failed, 2 on a usage error.
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-scapy
TIMEOUT_S = 20
IDLE_EXIT_MS = 500


def has_scapy(python):
    try:
        return subprocess.run([python, "-c", "import scapy.all"], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def gen_python():
    """A python that can import scapy: this one if it can, else Debian's."""
    if has_scapy(sys.executable):
        return sys.executable
    if os.path.exists(SYSTEM_PYTHON) and has_scapy(SYSTEM_PYTHON):
        return SYSTEM_PYTHON
    sys.exit("run.py: no python3 with scapy found (apt-get install python3-scapy)")


# --- pcap reading (classic pcap, either byte order, micro- or nanosecond) ----------------------

class PcapError(Exception):
    pass


def read_pcap(path):
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 24:
        raise PcapError(f"{os.path.basename(path)}: {len(data)} bytes, not a pcap file")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise PcapError(f"{os.path.basename(path)}: bad pcap magic {magic.hex()}")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        raise PcapError(f"{os.path.basename(path)}: link type {linktype}, not Ethernet")
    frames = []
    off = 24
    while off < len(data):
        if off + 16 > len(data):
            raise PcapError(f"{os.path.basename(path)}: truncated record header at {off}")
        _, _, caplen, wirelen = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        if off + caplen > len(data):
            raise PcapError(f"{os.path.basename(path)}: truncated record at {off}")
        if caplen != wirelen:
            raise PcapError(f"{os.path.basename(path)}: frame {len(frames)} captured "
                            f"{caplen} of {wirelen} bytes")
        frames.append(data[off:off + caplen])
        off += caplen
    return frames


# --- explaining a mismatch ----------------------------------------------------------------------

def hexdump_pair(exp, got):
    """Both frames as hex, 16 bytes a line; `^^` marks the bytes that differ."""
    lines = []
    n = max(len(exp), len(got))
    for off in range(0, n, 16):
        e = exp[off:off + 16]
        g = got[off:off + 16]
        if e == g:
            continue
        lines.append(f"    {off:04x}  expect {e.hex(' '):<47}")
        lines.append(f"          got    {g.hex(' '):<47}")
        marks = "".join("^^ " if i >= len(e) or i >= len(g) or e[i] != g[i] else "   "
                        for i in range(max(len(e), len(g))))
        lines.append(f"                 {marks.rstrip()}")
    return "\n".join(lines)


def field_diff(exp, got):
    """The header fields that differ, by scapy's dissection (best effort)."""
    try:
        sys.path.insert(0, HERE)
        from golden import Ether  # noqa: F401  (also filters dissection to L2-L4)
        from scapy.packet import NoPayload
    except ImportError:
        return ""
    try:
        return _field_diff(Ether(exp), Ether(got), NoPayload)
    except Exception:  # noqa: BLE001  (frames too broken to dissect: the hex dump says it)
        return ""


def _field_diff(e, g, NoPayload):
    out = []
    depth = 0
    while not isinstance(e, NoPayload) and not isinstance(g, NoPayload):
        if type(e) is not type(g):
            out.append(f"    layer {depth}: expect {e.name}, got {g.name}")
            break
        for f in e.fields_desc:
            ev, gv = e.getfieldval(f.name), g.getfieldval(f.name)
            if ev != gv and f.name != "load":
                out.append(f"    {e.name}.{f.name}: expect {f.i2repr(e, ev)}, "
                           f"got {f.i2repr(g, gv)}")
        if getattr(e, "load", None) is not None and e.load != g.load:
            out.append(f"    {e.name} payload differs")
        e, g = e.payload, g.payload
        depth += 1
    return "\n".join(out)


def summary(frame):
    try:
        sys.path.insert(0, HERE)
        from golden import Ether
        return Ether(frame).summary()
    except Exception:  # noqa: BLE001  (a summary is a nicety)
        return frame[:16].hex()


def compare(port, expect, got):
    """None if equal, else a description of the first difference."""
    for i in range(min(len(expect), len(got))):
        if expect[i] != got[i]:
            return (f"port {port} frame {i} differs (expect {len(expect[i])} bytes, "
                    f"got {len(got[i])})\n"
                    f"    expect: {summary(expect[i])}\n    got:    {summary(got[i])}\n"
                    + "".join(x + "\n" for x in [field_diff(expect[i], got[i])] if x)
                    + hexdump_pair(expect[i], got[i]))
    if len(got) > len(expect):
        extra = "\n".join(f"    got[{i}]: {summary(f)}  {f.hex()}"
                          for i, f in enumerate(got[len(expect):], len(expect)))
        return f"port {port}: {len(got)} frames, expected {len(expect)}; extra:\n{extra}"
    if len(got) < len(expect):
        missing = "\n".join(f"    expect[{i}]: {summary(f)}"
                            for i, f in enumerate(expect[len(got):], len(got)))
        return f"port {port}: {len(got)} frames, expected {len(expect)}; missing:\n{missing}"
    return None


def read_counters(path):
    counters = {}
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{os.path.basename(path)}:{n}: expected `name value`")
            counters[parts[0]] = int(parts[1])
    return counters


# --- one test --------------------------------------------------------------------------------

def run_test(name, lb, python, keep):
    """None if the test passed, else why not."""
    src = os.path.join(HERE, name)
    run_dir = tempfile.mkdtemp(prefix=f"golden-{name}-")
    why = "runner error"
    try:
        why = run_in(src, run_dir, lb, python)
    except Exception as e:  # noqa: BLE001  (one broken test must not stop the suite)
        why = f"runner error: {type(e).__name__}: {e}"
    finally:
        if why is None and not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    if why is not None or keep:
        note = f"    (files kept in {run_dir})"
        why = note if why is None else f"{why}\n{note}"
        if why.startswith("    (files"):
            print(why)
            return None
    return why


CHECK_ERROR = "expect.check_error"


def write_conf(src, run_dir):
    with open(os.path.join(src, "lb.conf")) as fh:
        conf = fh.read().replace("@RUNDIR@", run_dir)
    path = os.path.join(run_dir, "lb.conf")
    with open(path, "w") as fh:
        fh.write(conf)
    return path


def run_check(lb, conf, run_dir):
    """`lb -c conf --check`: (exit status, output)."""
    try:
        proc = subprocess.run([lb, "-c", conf, "--check"], cwd=run_dir, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"lb --check did not exit within {TIMEOUT_S} s"
    return proc.returncode, (proc.stdout + proc.stderr)


def run_check_error(src, run_dir, lb):
    """A config-error test: --check must refuse lb.conf with the expected message."""
    conf = write_conf(src, run_dir)
    with open(os.path.join(src, CHECK_ERROR)) as fh:
        want = [line.strip().replace("@RUNDIR@", run_dir) for line in fh
                if line.strip() and not line.lstrip().startswith("#")]
    if not want:
        return f"{CHECK_ERROR} holds no expected text"
    rc, out = run_check(lb, conf, run_dir)
    if rc is None:
        return out
    problems = []
    if rc != 1:
        problems.append(f"lb --check exited with status {rc}, expected 1")
    missing = [w for w in want if w not in out]
    if missing:
        problems.append("lb --check output lacks:\n" + "\n".join(f"    {w!r}" for w in missing))
    if problems:
        problems.append("lb --check said:\n" + tail(out))
    return "\n".join(problems) if problems else None


def run_in(src, run_dir, lb, python):
    if os.path.exists(os.path.join(src, CHECK_ERROR)):
        return run_check_error(src, run_dir, lb)
    gen = subprocess.run([python, os.path.join(src, "gen.py"), run_dir], cwd=run_dir,
                         capture_output=True, text=True, timeout=120)
    if gen.returncode != 0:
        return f"gen.py failed (exit {gen.returncode}):\n{tail(gen.stderr + gen.stdout)}"
    for f in ("send0.pcap", "send1.pcap", "expect0.pcap", "expect1.pcap"):
        if not os.path.exists(os.path.join(run_dir, f)):
            return f"gen.py wrote no {f}"
    conf = write_conf(src, run_dir)
    rc, out = run_check(lb, conf, run_dir)
    if rc != 0:
        return f"lb --check refused lb.conf (status {rc})\n{tail(out)}"

    cmd = [lb, "-c", os.path.join(run_dir, "lb.conf"), "--idle-exit", str(IDLE_EXIT_MS),
           "--stats-file", "counters.txt"]
    log_path = os.path.join(run_dir, "lb.log")
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(cmd, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return f"lb did not exit within {TIMEOUT_S} s\n{tail(read(log_path))}"
    if proc.returncode != 0:
        return f"lb exited with status {proc.returncode}\n{tail(read(log_path))}"

    problems = []
    for port in (0, 1):
        try:
            expect = read_pcap(os.path.join(run_dir, f"expect{port}.pcap"))
        except PcapError as e:
            return f"gen.py: {e}"
        out = os.path.join(run_dir, f"out{port}.pcap")
        if not os.path.exists(out):
            problems.append(f"lb wrote no out{port}.pcap")
            continue
        try:
            got = read_pcap(out)
        except PcapError as e:
            problems.append(str(e))
            continue
        diff = compare(port, expect, got)
        if diff:
            problems.append(diff)

    exp_path = os.path.join(run_dir, "expect.counters")
    if os.path.exists(exp_path):
        got_path = os.path.join(run_dir, "counters.txt")
        if not os.path.exists(got_path):
            problems.append("lb wrote no counters.txt (--stats-file)")
        else:
            try:
                want = read_counters(exp_path)
                have = read_counters(got_path)
            except ValueError as e:
                problems.append(str(e))
            else:
                bad = [f"    {k}: expect {v}, got {have.get(k, 'nothing')}"
                       for k, v in want.items() if have.get(k) != v]
                if bad:
                    problems.append("counters differ:\n" + "\n".join(bad))
    return "\n".join(problems) if problems else None


def read(path):
    try:
        with open(path, errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def tail(text, n=15):
    lines = text.rstrip().splitlines()[-n:]
    return "\n".join("    | " + line for line in lines)


def main():
    # The diffs use scapy: run under Debian's python if this one lacks it.
    try:
        import scapy.all  # noqa: F401
    except ImportError:
        if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) \
                and has_scapy(SYSTEM_PYTHON):
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lb", default=os.path.join(REPO, "build", "lb", "lb"),
                    help="the lb binary (default: build/lb/lb under the repo root)")
    ap.add_argument("--keep", action="store_true", help="keep the run directories of passes too")
    ap.add_argument("names", nargs="*", metavar="NAME", help="tests to run (default: all)")
    args = ap.parse_args()

    lb = os.path.abspath(args.lb)
    if not os.access(lb, os.X_OK):
        print(f"run.py: {lb}: no such executable (build it, or pass --lb)", file=sys.stderr)
        return 2
    tests = sorted(d for d in os.listdir(HERE)
                   if (os.path.isfile(os.path.join(HERE, d, "gen.py"))
                       or os.path.isfile(os.path.join(HERE, d, CHECK_ERROR)))
                   and os.path.isfile(os.path.join(HERE, d, "lb.conf")))
    if args.names:
        chosen = []
        for n in args.names:
            n = n.rstrip("/").split("/")[-1]
            hit = [t for t in tests if t == n or t.split("_", 1)[0] == n]
            if not hit:
                print(f"run.py: no test {n!r} (have: {' '.join(tests)})", file=sys.stderr)
                return 2
            chosen += [t for t in hit if t not in chosen]
        tests = chosen

    python = gen_python()
    passed = failed = 0
    for t in tests:
        why = run_test(t, lb, python, args.keep)
        if why is None:
            passed += 1
            print(f"PASS {t}", flush=True)
        else:
            failed += 1
            print(f"FAIL {t}: {why}", flush=True)
    print(f"golden: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
