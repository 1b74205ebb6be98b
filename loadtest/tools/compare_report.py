"""The run description around loadtest/compare.sh's tables: progress lines, meta.json updates and
the report's machine sentence.

    python3 compare_report.py progress RESULTS_JSONL SETUP ROUND
        One line for the log after a setup's round: max req/s and, per fixed rate, CPU-µs/request
        and p50 (from compare_tools.py's records of that setup and round).
    python3 compare_report.py machine META_JSON
        The log's short machine line: CPU model, CPU count, kernel.
    python3 compare_report.py set-rounds META_JSON N
        Rewrites META_JSON with "rounds": N (the rounds actually done).
    python3 compare_report.py sentence META_JSON
        The report's "Machine: ... splitgate ...; nginx ..., oha ..." sentence with every version.

META_JSON is the meta.json that compare.sh writes before measuring. Standard library only.
"""
import json, sys


def progress(results, setup, round_):
    rs = [r for r in map(json.loads, filter(str.strip, open(results)))
          if r.get("setup") == setup and r.get("round") == round_]
    m = [r for r in rs if r["kind"] == "max"]
    print("max %.0f req/s;" % ((m[0].get("rps") or 0) if m else 0), " ".join(
        "%d: %.1f µs p50 %.2f ms" % (r["rate"], r.get("cpu_us_per_req") or 0, r.get("p50_ms") or 0)
        for r in rs if r["kind"] == "rate"))


def main():
    cmd, meta = sys.argv[1], sys.argv[2]
    if cmd == "progress":
        progress(meta, sys.argv[3], int(sys.argv[4]))
        return
    d = json.load(open(meta))
    if cmd == "machine":
        print(d['cpu'], d['cpus'], 'CPUs, kernel', d['kernel'])
    elif cmd == "set-rounds":
        d["rounds"] = int(sys.argv[3])
        json.dump(d, open(meta, "w"), indent=1)
    elif cmd == "sentence":
        print('Machine: %s, %s CPUs, Linux %s. splitgate %s (%s); nginx %s, HAProxy %s, Envoy %s, Pingora %s; wrk %s, oha %s.' % (
            d['cpu'], d['cpus'], d['kernel'], d['splitgate'], d['git'], d['nginx'], d['haproxy'], d['envoy'], d['pingora'], d['wrk'], d['oha']))
    else:
        sys.exit("unknown command " + cmd)


main()
