"""Measuring helpers of loadtest/compare.sh: turn one load run into one JSON record, hold idle
connections for the RSS test, count shadow copies.

    python3 compare_tools.py record KIND KEY=VALUE...
        Prints one JSON line (compare.sh appends it to results.jsonl). KIND is max, rate, slow or
        rss. Values that look numeric become numbers; wrk=FILE (wrk --latency output), oha=FILE
        (oha --output-format json) and json=FILE are parsed into fields; kind=... relabels the
        record. With ticks= (proxy utime+stime in clock ticks) and clk= (CLK_TCK) it adds cpu_s,
        cpu_us_per_req (rate/slow runs: per 200 answer) and proxy_busy_pct (with secs=).
    python3 compare_tools.py idle-conns PORT N HOLD_SECONDS API_KEY PID...
        Opens N keep-alive connections to 127.0.0.1:PORT, one answered POST /recommend on each,
        holds them idle HOLD_SECONDS, and prints JSON: the PIDs' summed RSS before and after,
        connections opened / still open / failed, bytes per connection.
    python3 compare_tools.py shadow-counts < METRICS
        Reads splitgate's Prometheus page on stdin and prints shadow_mirrored=N shadow_dropped=N
        shadow_ok=N shadow_timeout=N (nothing when there is no shadow series).

The report table is compare_summary.py's. Standard library only.
"""
import json, re, socket, sys, time

def unit_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

def parse_wrk(path):
    t = open(path).read()
    out = {"rps": None, "non2xx": 0, "socket_errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", t)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    if m:
        out["socket_errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"(\d+) requests in", t)
    if m:
        out["requests"] = int(m.group(1))
    for q in ("50", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s|m)\s*$" % q, t, re.M)
        if m:
            out["p" + q + "_ms"] = unit_ms(m.group(1), m.group(2))
    return out

def parse_oha(path):
    d = json.load(open(path))
    codes = d.get("statusCodeDistribution", {}) or {}
    ok = int(codes.get("200", 0))
    answered = sum(int(v) for v in codes.values())
    errors = sum(int(v) for v in (d.get("errorDistribution", {}) or {}).values())
    pct = d.get("latencyPercentiles", {}) or {}
    def ms(key):
        v = pct.get(key)
        return None if v is None else v * 1000.0
    s = d.get("summary", {}) or {}
    return {"ok": ok, "answered": answered, "errors": errors,
            "achieved_rps": s.get("requestsPerSec"),
            "p50_ms": ms("p50"), "p99_ms": ms("p99"), "p999_ms": ms("p99.9")}

def record(kind, kv):
    """kv: list of k=v; numeric values become numbers; wrk=/oha=/json= files are parsed.
    A kind=... entry relabels the record (the measurement itself is still `kind`)."""
    rec = {"kind": kind}
    for item in kv:
        k, v = item.split("=", 1)
        if k == "wrk":
            rec.update(parse_wrk(v))
        elif k == "oha":
            rec.update(parse_oha(v))
        elif k == "json":
            rec.update(json.load(open(v)))
        else:
            try:
                rec[k] = int(v)
            except ValueError:
                try:
                    rec[k] = float(v)
                except ValueError:
                    rec[k] = v
    clk = rec.pop("clk", None)
    if clk and "ticks" in rec:
        cpu_s = rec["ticks"] / clk
        rec["cpu_s"] = cpu_s
        if kind in ("rate", "slow") and rec.get("ok"):
            rec["cpu_us_per_req"] = cpu_s * 1e6 / rec["ok"]
        if rec.get("secs"):
            rec["proxy_busy_pct"] = 100.0 * cpu_s / rec["secs"]
    print(json.dumps(rec, sort_keys=True))

def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def idle_conns(port, n, hold, key, pids):
    """Open n keep-alive connections, one answered request on each, hold them idle, report RSS."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
    pids = [int(p) for p in pids]
    time.sleep(0.5)
    before = sum(vmrss_kb(p) for p in pids)
    socks, failed = [], 0
    deadline = time.monotonic() + 60
    for i in range(n):
        if time.monotonic() > deadline:
            break
        uid = "idle%d" % i
        body = ('{"user_id":"%s","context":{"page":"home"}}' % uid).encode()
        req = ("POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\nX-User-Id: %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (key, uid, len(body))).encode() + body
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buf += chunk
            head, rest = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            need = int(m.group(1)) if m else 0
            while len(rest) < need:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("closed")
                rest += chunk
            if not head.startswith(b"HTTP/1.1 200"):
                raise OSError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            socks.append(s)
        except OSError:
            failed += 1
    time.sleep(hold)
    after = sum(vmrss_kb(p) for p in pids)
    # Still open? A closed idle connection reads EOF without blocking.
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            alive += 0 if s.recv(1) == b"" else 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    per = (after - before) * 1024.0 / max(1, len(socks))
    print(json.dumps({"rss_before_kb": before, "rss_after_kb": after, "opened": len(socks),
                      "still_open": alive, "failed": failed, "bytes_per_conn": per}))

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "record":
        record(sys.argv[2], sys.argv[3:])
    elif cmd == "idle-conns":
        idle_conns(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6:])
    elif cmd == "shadow-counts":
        # From the admin listener's Prometheus page: copies enqueued, dropped, answered.
        n = {}
        for line in sys.stdin:
            m = re.match(r'splitgate_shadow_requests_total\{[^}]*outcome="(\w+)"[^}]*\}\s+([\d.e+]+)', line)
            if m:
                n[m.group(1)] = n.get(m.group(1), 0) + int(float(m.group(2)))
        if n:
            print("shadow_mirrored=%d shadow_dropped=%d shadow_ok=%d shadow_timeout=%d" % (
                n.get("enqueued", 0), n.get("dropped", 0), n.get("ok", 0), n.get("timeout", 0)))
    else:
        sys.exit("unknown command " + cmd)
