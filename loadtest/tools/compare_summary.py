"""The result tables of loadtest/compare.sh (Markdown on stdout).

    python3 compare_summary.py RESULTS_JSONL SETUPS RATES META_JSON

RESULTS_JSONL holds compare_tools.py's records; SETUPS is the comma-separated setups in table
order; RATES the comma-separated fixed rates (req/s); META_JSON the run's meta.json (`rounds`).
Prints medians over rounds per setup, splitgate's ratios against each peer, the slow-shadow table
and the issue's goals. Environment: IDLE_CONNS (connections of the RSS test, default 1000),
SLOW_RATE (rate of the slow-shadow p50 run, default 2000), QUIET_MAX_WAIT (named in a note).
Standard library only.
"""
import json, os, statistics, sys

HASHES = {
    "direct": "(no proxy)",
    "splitgate": "user_id from the JSON body",
    "splitgate-builtin": "user_id from the JSON body",
    "splitgate-shadow": "user_id from the JSON body",
    "splitgate-slowshadow": "user_id from the JSON body",
    "splitgate-sagemaker": "user_id from the JSON body",
    "splitgate-sagemaker-sdk": "user_id from the JSON body",
    "splitgate-https": "user_id from the JSON body",
    "splitgate-sagemaker-https": "user_id from the JSON body",
    "nginx": "X-User-Id header",
    "nginx-mirror": "X-User-Id header",
    "nginx-slowmirror": "X-User-Id header",
    "haproxy": "user_id from the JSON body (json_query)",
    "envoy": "X-User-Id header (Maglev)",
    "envoy-mirror": "X-User-Id header (Maglev)",
    "envoy-slowmirror": "X-User-Id header (Maglev)",
    "pingora": "X-User-Id header",
}
LABEL = {
    "direct": "straight to the model",
    "splitgate": "**splitgate** split + log",
    "splitgate-builtin": "**splitgate** builtin model",
    "splitgate-shadow": "**splitgate** + 100% shadow",
    "splitgate-sagemaker": "**splitgate**, SageMaker model (direct path, SigV4)",
    "splitgate-sagemaker-sdk": "**splitgate**, SageMaker model, `sagemaker_client = \"sdk\"`",
    "splitgate-https": "**splitgate**, https:// model",
    "splitgate-sagemaker-https": "**splitgate**, SageMaker model over TLS",
    "nginx": "NGINX split",
    "nginx-mirror": "NGINX split + 100% mirror",
    "haproxy": "HAProxy hash split",
    "envoy": "Envoy split",
    "envoy-mirror": "Envoy split + 100% mirror",
    "pingora": "Pingora 0.8.1 split",
}
# Which splitgate row each peer is compared with.
COUNTERPART = {"nginx": "splitgate", "haproxy": "splitgate", "envoy": "splitgate",
               "pingora": "splitgate", "nginx-mirror": "splitgate-shadow",
               "envoy-mirror": "splitgate-shadow", "direct": "splitgate-builtin"}

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def f(v, fmt="{:.1f}", none="–"):
    return none if v is None else fmt.format(v)

def summarize(results, order, rates, meta_path):
    recs = [json.loads(l) for l in open(results) if l.strip()]
    meta = json.load(open(meta_path))
    S = {}
    for name in order:
        mx = [r for r in recs if r["kind"] == "max" and r["setup"] == name]
        if not mx and not any(r.get("setup") == name for r in recs):
            continue
        row = {"max": med([r.get("rps") for r in mx]),
               "busy": med([r.get("proxy_busy_pct") for r in mx]),
               "max_bad": sum(r.get("non2xx", 0) + r.get("socket_errors", 0) for r in mx),
               "rounds": len(mx),
               "noisy": sum(r.get("noisy", 0) for r in recs if r.get("setup") == name and r["kind"] in ("max", "rate"))}
        for q in rates:
            rr = [r for r in recs if r["kind"] == "rate" and r["setup"] == name and r["rate"] == q]
            row[q] = {k: med([r.get(k) for r in rr]) for k in
                      ("cpu_us_per_req", "p50_ms", "p99_ms", "p999_ms", "achieved_rps")}
            row[q]["bad"] = sum((r.get("answered", 0) - r.get("ok", 0)) + r.get("errors", 0) for r in rr)
            row[q]["short"] = any((r.get("achieved_rps") or 0) < 0.95 * q for r in rr)
        rs = [r for r in recs if r["kind"] == "rss" and r["setup"] == name]
        row["rss"] = rs[-1] if rs else None
        S[name] = row

    out = []
    w = out.append
    w("### Results (median of %s interleaved round(s); proxy on CPU 1, load + upstreams on CPU 0)" % meta["rounds"])
    w("")
    w("| setup | split hashes | max req/s (wrk -c64) | proxy core busy at max | CPU-µs/req at 2k / 5k / 10k | "
      "p50 / p99 / p99.9 ms at 2k | at 5k | at 10k | RSS MB idle → +1,000 conns | bytes/conn |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for name, row in S.items():
        cpu = " / ".join(f(row[q]["cpu_us_per_req"]) + ("*" if row[q]["short"] or row[q]["bad"] else "") for q in rates)
        lat = []
        for q in rates:
            lat.append(" / ".join(f(row[q][k], "{:.2f}") for k in ("p50_ms", "p99_ms", "p999_ms")))
        r = row["rss"]
        rss = "–" if not r else "%.1f → %.1f" % (r["rss_before_kb"] / 1024, r["rss_after_kb"] / 1024)
        per = "–" if not r else "{:,.0f}".format(r["bytes_per_conn"]) + ("" if r["opened"] == IDLE_N and r["still_open"] == r["opened"] else " (%d/%d open)" % (r["still_open"], IDLE_N))
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            LABEL.get(name, name) + (" ~" if row["noisy"] else ""), HASHES.get(name, ""), f(row["max"], "{:,.0f}"), f(row["busy"], "{:.0f}%"),
            cpu, lat[0], lat[1], lat[2], rss, per))
        for q in rates:
            if row[q]["short"] or row[q]["bad"]:
                notes.append("%s at %d req/s: achieved %s req/s, %d failed/non-200 (overloaded)" % (
                    name, q, f(row[q]["achieved_rps"], "{:,.0f}"), row[q]["bad"]))
        if row["max_bad"]:
            notes.append("%s max run: %d non-2xx/socket errors" % (name, row["max_bad"]))
    w("")
    if notes:
        w("`*` = the proxy could not sustain that rate or answered non-200: " + "; ".join(notes) + ".")
        w("")
    if any(row["noisy"] for row in S.values()):
        w("`~` = some of this row's runs started while something else kept the machine busy (waited %s s for quiet, then measured anyway)." % os.environ.get("QUIET_MAX_WAIT", "15"))
        w("")
    w("\"proxy core busy\" = proxy CPU time / wall time during the wrk run; below ~95% the proxy was "
      "not the bottleneck (CPU 0, with wrk and the upstreams, was).")
    w("")

    # Ratios
    w("### splitgate against each peer (>1 = splitgate better)")
    w("")
    w("| peer | compared with | throughput (ours / theirs) | CPU-µs/req at 10k (theirs / ours) | at 5k | p50 at 5k (theirs / ours) | bytes/conn (theirs / ours) |")
    w("|---|---|---:|---:|---:|---:|---:|")
    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b
    def rcell(theirs, ours, q, key):
        # A ratio where either side could not sustain the rate compares queues, not proxies.
        if q not in rates:
            return "–"
        v = ratio(theirs[q][key], ours[q][key])
        cell = f(v, "{:.2f}×")
        if v is not None and (theirs[q]["short"] or ours[q]["short"]):
            cell += " (overloaded)" if key == "p50_ms" else "*"
        return cell
    for name, row in S.items():
        us = COUNTERPART.get(name)
        if not us or us not in S:
            continue
        o = S[us]
        rp = ratio(row["rss"]["bytes_per_conn"] if row["rss"] else None,
                   o["rss"]["bytes_per_conn"] if o["rss"] else None)
        tput = ratio(o["max"], row["max"])
        if name == "direct":
            note = " (builtin / straight-to-model)"
        else:
            note = ""
        w("| %s | %s | %s%s | %s | %s | %s | %s |" % (
            LABEL.get(name, name), LABEL.get(us, us), f(tput, "{:.2f}×"), note,
            rcell(row, o, 10000, "cpu_us_per_req"), rcell(row, o, 5000, "cpu_us_per_req"),
            rcell(row, o, 5000, "p50_ms"),
            f(rp, "{:.2f}×")))
    w("")
    w("`*` / (overloaded): one side could not sustain that rate, so the ratio is not a like-for-like comparison.")
    w("")

    # Slow shadow
    slow = [r for r in recs if r["kind"] == "slow"]
    if slow:
        w("### A shadow that sleeps 200 ms vs a fast shadow (wrk -t1 -c64 for max; oha at %d req/s for p50)" % SLOW_RATE)
        w("")
        w("| setup | shadow | max req/s | p50 ms at max (wrk) | p50 / p99 ms at %dk | achieved req/s | shadow copies queued / dropped |" % (SLOW_RATE // 1000))
        w("|---|---|---:|---:|---:|---:|---:|")
        for name in [n for n in ("splitgate", "nginx", "envoy") if any(r["setup"] == n for r in slow)]:
            for shadow in ("fast", "slow"):
                rr = [r for r in slow if r["setup"] == name and r["shadow"] == shadow]
                if not rr:
                    continue
                mx = [r for r in rr if r["phase"] == "max"]
                rt = [r for r in rr if r["phase"] == "rate"]
                sh = [r for r in rr if "shadow_mirrored" in r]
                shs = "–" if not sh else "%d / %d" % (sum(r["shadow_mirrored"] for r in sh), sum(r["shadow_dropped"] for r in sh))
                w("| %s | %s | %s | %s | %s / %s | %s | %s |" % (
                    name, "sleeps 200 ms" if shadow == "slow" else "fast",
                    f(med([r.get("rps") for r in mx]), "{:,.0f}"), f(med([r.get("p50_ms") for r in mx]), "{:.2f}"),
                    f(med([r.get("p50_ms") for r in rt]), "{:.2f}"), f(med([r.get("p99_ms") for r in rt]), "{:.2f}"),
                    f(med([r.get("achieved_rps") for r in rt]), "{:,.0f}"), shs))
        w("")

    # The production paths against the http path (issue 18)
    prod = [n for n in ("splitgate-sagemaker", "splitgate-sagemaker-sdk", "splitgate-https", "splitgate-sagemaker-https") if n in S]
    if prod and "splitgate" in S:
        w("### splitgate's production paths against its http path (<1.3× CPU is the goal)")
        w("")
        w("| setup | compared with | CPU-µs/req at 5k (this / that) | at 10k | p50 at 5k, this − that | max req/s (this / that) |")
        w("|---|---|---:|---:|---:|---:|")
        pairs = [(n, "splitgate") for n in prod]
        if "splitgate-sagemaker-https" in S and "splitgate-https" in S:
            pairs.append(("splitgate-sagemaker-https", "splitgate-https"))
        if "splitgate-sagemaker-sdk" in S and "splitgate-sagemaker" in S:
            # What the direct path bought, in the same run.
            pairs.append(("splitgate-sagemaker-sdk", "splitgate-sagemaker"))
        for a, b in pairs:
            A, B = S[a], S[b]
            def cpu(q):
                if q not in rates:
                    return "–"
                v = ratio(A[q]["cpu_us_per_req"], B[q]["cpu_us_per_req"])
                return f(v, "{:.2f}×") + ("*" if v is not None and (A[q]["short"] or B[q]["short"]) else "")
            dp = None
            if 5000 in rates and A[5000]["p50_ms"] is not None and B[5000]["p50_ms"] is not None:
                dp = A[5000]["p50_ms"] - B[5000]["p50_ms"]
            w("| %s | %s | %s | %s | %s | %s |" % (LABEL.get(a, a), LABEL.get(b, b), cpu(5000), cpu(10000),
                                              f(dp, "{:+.3f} ms"), f(ratio(A["max"], B["max"]), "{:.2f}×")))
        w("")

    # Goals
    def get(name, *path):
        v = S.get(name)
        for p in path:
            if v is None:
                return None
            v = v.get(p) if isinstance(v, dict) else None
        return v
    goals = []
    d = get("direct", 10000, "cpu_us_per_req")
    def scaled(v, goal):
        # The goals were set on a machine where straight-to-model cost 15.7 µs/request.
        if v is None or d is None:
            return ""
        return "; %.2f× straight-to-model here (%.1f µs); the goal is %.2f× the issue's 15.7 µs" % (v / d, d, goal / 15.7)
    v = get("splitgate", 10000, "cpu_us_per_req")
    goals.append(("auth + split + log, no shadow: ≤ 20 CPU-µs/req at 10k", v is not None and v <= 20, f(v) + " µs" + scaled(v, 20)))
    a, b = get("splitgate", "max"), get("nginx", "max")
    goals.append(("max req/s ≥ NGINX split", None if a is None or b is None else a >= b,
                  "%s vs %s" % (f(a, "{:,.0f}"), f(b, "{:,.0f}"))))
    v = get("splitgate-shadow", 10000, "cpu_us_per_req")
    goals.append(("100% shadow: ≤ 40 CPU-µs/req at 10k", v is not None and v <= 40, f(v) + " µs" + scaled(v, 40)))
    fm = med([r.get("rps") for r in slow if r["setup"] == "splitgate" and r["shadow"] == "fast" and r["phase"] == "max"])
    sm = med([r.get("rps") for r in slow if r["setup"] == "splitgate" and r["shadow"] == "slow" and r["phase"] == "max"])
    fp = med([r.get("p50_ms") for r in slow if r["setup"] == "splitgate" and r["shadow"] == "fast" and r["phase"] == "rate"])
    sp = med([r.get("p50_ms") for r in slow if r["setup"] == "splitgate" and r["shadow"] == "slow" and r["phase"] == "rate"])
    ok = None
    if None not in (fm, sm, fp, sp):
        ok = sm >= 0.9 * fm and sp <= 1.1 * fp + 0.05
    goals.append(("200 ms shadow changes neither p50 nor throughput (±10%)", ok,
                  "fast → slow shadow: max %s → %s req/s, p50 at %d req/s %s → %s ms" % (f(fm, "{:,.0f}"), f(sm, "{:,.0f}"), SLOW_RATE, f(fp, "{:.2f}"), f(sp, "{:.2f}"))))
    r = get("splitgate", "rss")
    goals.append(("RSS ≤ 30 MB with 1,000 idle keep-alive connections", None if not r else r["rss_after_kb"] <= 30 * 1024,
                  "-" if not r else "%.1f MB, %s bytes/conn" % (r["rss_after_kb"] / 1024, "{:,.0f}".format(r["bytes_per_conn"]))))
    a, b = get("splitgate-builtin", "max"), get("direct", "max")
    goals.append(("builtin model ≥ 80% of straight-to-model throughput", None if a is None or b is None else a >= 0.8 * b,
                  "%s vs %s (%s)" % (f(a, "{:,.0f}"), f(b, "{:,.0f}"), f(ratio(a, b), "{:.0%}"))))
    def prod_goal(label, this, that):
        a5, b5 = get(this, 5000, "cpu_us_per_req"), get(that, 5000, "cpu_us_per_req")
        a10, b10 = get(this, 10000, "cpu_us_per_req"), get(that, 10000, "cpu_us_per_req")
        p_a, p_b = get(this, 5000, "p50_ms"), get(that, 5000, "p50_ms")
        if None in (a5, b5, a10, b10, p_a, p_b):
            goals.append((label, None, "not measured"))
            return
        ok = a5 <= 1.3 * b5 and a10 <= 1.3 * b10 and p_a - p_b <= 0.1
        goals.append((label, ok, "CPU %.2f× at 5k, %.2f× at 10k; p50 %+.3f ms" % (a5 / b5, a10 / b10, p_a - p_b)))
    prod_goal("SageMaker ≤ 1.3× the http path's CPU at 5k and 10k, p50 within 0.1 ms", "splitgate-sagemaker", "splitgate")
    prod_goal("SageMaker over TLS: the same against https:// models", "splitgate-sagemaker-https", "splitgate-https")
    prod_goal("https:// models: the same against http:// ones", "splitgate-https", "splitgate")
    a, b = get("nginx", 10000, "cpu_us_per_req"), get("splitgate", 10000, "cpu_us_per_req")
    goals.append(("http path ≥ 1.0× NGINX on CPU/req at 10k (theirs / ours)", None if a is None or b is None else a >= b,
                  "%s / %s µs = %s" % (f(a), f(b), f(ratio(a, b), "{:.2f}×"))))
    a, b = get("nginx-mirror", 10000, "cpu_us_per_req"), get("splitgate-shadow", 10000, "cpu_us_per_req")
    goals.append(("100% shadow ≥ 2× NGINX mirror on CPU/req at 10k (theirs / ours)", None if a is None or b is None else a >= 2 * b,
                  "%s / %s µs = %s" % (f(a), f(b), f(ratio(a, b), "{:.2f}×"))))
    w("### Goals (issues 7 and 18)")
    w("")
    w("| goal | met | measured |")
    w("|---|---|---|")
    for g, ok, m in goals:
        w("| %s | %s | %s |" % (g, {True: "yes", False: "**no**", None: "not measured"}[ok], m))
    w("")
    return "\n".join(out)

IDLE_N = int(os.environ.get("IDLE_CONNS", "1000"))
SLOW_RATE = int(os.environ.get("SLOW_RATE", "2000"))

if __name__ == "__main__":
    print(summarize(sys.argv[1], sys.argv[2].split(","), [int(x) for x in sys.argv[3].split(",")], sys.argv[4]))
