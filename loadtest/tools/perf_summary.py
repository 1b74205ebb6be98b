"""Summarize a perf profile of splitgate for loadtest/compare.sh --profile (Markdown on stdout).

    python3 perf_summary.py SYMBOLS_TXT PERF_STAT_TXT RATE [REQUESTS]

SYMBOLS_TXT is the `perf report --no-children --sort dso,symbol --stdio` lines with a percentage;
PERF_STAT_TXT is `perf stat`'s output over the same load; RATE is the offered req/s; REQUESTS
(optional) is the number of requests answered during the perf stat window (access-log lines),
else RATE x the elapsed seconds. Prints the top 15 symbols by self time, self time grouped by
component (kernel, malloc, memcpy, crate), and CPU-µs, syscalls and context switches per request.
Standard library only.
"""
import re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
    if m:
        sym = re.sub(r"(\s+-)+\s*$", "", m.group(4)).strip()
        rows.append((float(m.group(1)), m.group(2), m.group(3), sym))
def component(dso, kind, sym):
    if kind == "k" or "kernel" in dso:
        return "kernel (TCP/IP, epoll, syscalls)"
    if dso.startswith("libc"):
        if re.search(r"malloc|free|_int_|unlink_chunk|consolidate|realloc|tcache|arena", sym):
            return "malloc/free (glibc)"
        if re.search(r"mem(cpy|move|set|cmp)|str", sym):
            return "memcpy/memmove (glibc)"
        return "other libc"
    s = sym
    while True:
        m = re.match(r"^(?:<|core::ptr::drop_in_place<|alloc::\w+::\w+<|&)(.*)$", s)
        if not m:
            break
        s = m.group(1)
    crate = re.match(r"[A-Za-z_][A-Za-z0-9_]*", s)
    crate = crate.group(0) if crate else "?"
    if crate == "T":
        return "generic (<T as Trait>)"
    if crate in ("core", "alloc", "std"):
        return "Rust std/core/alloc"
    return crate
groups = {}
for pct, dso, kind, sym in rows:
    c = component(dso, kind, sym)
    groups[c] = groups.get(c, 0.0) + pct
stat = open(sys.argv[2]).read()
def counter(name):
    m = re.search(r"^\s*([\d,.]+)\s+(?:msec\s+)?%s\b" % re.escape(name), stat, re.M)
    return float(m.group(1).replace(",", "")) if m else None
elapsed = re.search(r"([\d.]+) seconds time elapsed", stat)
rate = float(sys.argv[3])
print("Top 15 symbols by self time (perf record -F 1999 -g, 8 s at %d req/s):\n" % rate)
print("| # | self % | where | symbol |")
print("|---:|---:|---|---|")
for i, (pct, dso, kind, sym) in enumerate(rows[:15], 1):
    sym = sym if len(sym) <= 110 else sym[:107] + "..."
    print("| %d | %.2f | %s | `%s` |" % (i, pct, "kernel" if kind == "k" else dso, sym.replace("|", "\\|")))
print("\nSelf time by component:\n")
print("| component | self % |")
print("|---|---:|")
for c, pct in sorted(groups.items(), key=lambda kv: -kv[1])[:14]:
    print("| %s | %.1f |" % (c, pct))
if elapsed:
    secs = float(elapsed.group(1))
    n = float(sys.argv[4]) if len(sys.argv) > 4 and float(sys.argv[4]) > 0 else rate * secs
    tc, cs, sc = counter("task-clock"), counter("context-switches"), counter("raw_syscalls:sys_enter")
    print("\nperf stat over %.0f s at %d req/s (%d requests): " % (secs, rate, n) + ", ".join(x for x in [
        tc and "%.1f CPU-µs/request" % (tc * 1000 / n),
        sc and "%.2f syscalls/request" % (sc / n),
        cs is not None and "%.3f context switches/request" % (cs / n)] if x))
