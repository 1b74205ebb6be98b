#!/usr/bin/env python3
"""Recompute splitgate's user -> variant assignment offline (Python standard library only).

    python3 loadtest/assignment.py --config config/splitgate.toml USER_ID...
    cut -f1 users.tsv | python3 loadtest/assignment.py --config config/splitgate.toml -

Prints `user_id<TAB>variant<TAB>model`, exactly like `splitgate route`.

    python3 loadtest/assignment.py --config config/splitgate.toml --access-log access.jsonl

checks splitgate's exposure log instead: for every `POST /recommend` line carrying `userHash` and
`bucket` (the split chose the variant) and served under the config's `version` (every line when
the config has none), it recomputes the bucket from `userHash` (bucket = userHash mod 10000), the
variant from the bucket and the config's layout, and the weight epoch id from the layout; prints
the per-(epoch, variant) table of distinct users and requests, then `checked N, mismatched M`,
and exits 1 on any mismatch.

The algorithm (the contract with every splitgate replica and release):
  bucket  = int.from_bytes(sha256(salt + b"\\0" + user_id)[:8], "big") % 10000
  weights = percentages with two decimals -> round(weight * 100) buckets each (sum 10000)
  slots   = every non-champion variant owns a fixed range of buckets: an explicit `slot = [from, to]`
            (percent), else an equal division of [0, 10000) among non-champions in config order;
            it fills its slot from the start with its weight's buckets
  variant = the non-champion whose filled range holds the bucket, else the champion
"""
import argparse
import hashlib
import json
import sys
import tomllib

BUCKETS = 10_000


def bucket(salt: str, user_id: str) -> int:
    digest = hashlib.sha256(salt.encode() + b"\0" + user_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def to_buckets(percent: float) -> int:
    return round(percent * 100)


def layout(variants: list) -> list:
    """A list of BUCKETS variant indices."""
    champion = next(i for i, v in enumerate(variants) if v.get("champion", False))
    others = [i for i in range(len(variants)) if i != champion]
    table = [champion] * BUCKETS
    for k, i in enumerate(others):
        v = variants[i]
        if "slot" in v:
            start = to_buckets(v["slot"][0])
        else:
            start = k * BUCKETS // len(others)
        for b in range(start, start + to_buckets(v["weight"])):
            table[b] = i
    return table


def epoch_id(salt: str, variants: list, table: list) -> str:
    """splitgate's weight-epoch id: SHA-256 over the salt and each run of buckets with its owner."""
    h = hashlib.sha256(b"splitgate-epoch-v1\0" + salt.encode() + b"\0")
    start = 0
    while start < BUCKETS:
        owner = table[start]
        end = start + 1
        while end < BUCKETS and table[end] == owner:
            end += 1
        h.update(start.to_bytes(4, "big") + end.to_bytes(4, "big") + variants[owner]["name"].encode() + b"\0")
        start = end
    return h.digest()[:8].hex()


def check_log(cfg: dict, lines, out) -> int:
    """Checks exposure-log lines against `cfg`; returns the number of mismatches."""
    split = cfg["split"]
    variants = split["variants"]
    table = layout(variants)
    epoch = epoch_id(split["salt"], variants, table)
    version = cfg.get("version")
    checked = mismatched = 0
    users, requests = {}, {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        if rec.get("routeKey") != "POST /recommend" or rec.get("userHash") is None or rec.get("bucket") is None:
            continue
        if version is not None and rec.get("configVersion") != version:
            continue
        checked += 1
        bucket = int(rec["userHash"], 16) % BUCKETS
        variant = variants[table[bucket]]["name"]
        problems = []
        if bucket != rec["bucket"]:
            problems.append(f"bucket {rec['bucket']} != {bucket} from userHash")
        if variant != rec.get("variant"):
            problems.append(f"variant {rec.get('variant')} != {variant}")
        if rec.get("epoch") != epoch:
            problems.append(f"epoch {rec.get('epoch')} != {epoch}")
        if problems:
            mismatched += 1
            print(f"line {n}: " + "; ".join(problems), file=sys.stderr)
        key = (rec.get("epoch"), rec.get("variant"))
        users.setdefault(key, set()).add(rec["userHash"])
        requests[key] = requests.get(key, 0) + 1
    out.write("epoch\tvariant\tusers\trequests\n")
    for key in sorted(requests, key=lambda k: (str(k[0]), str(k[1]))):
        out.write(f"{key[0]}\t{key[1]}\t{len(users[key])}\t{requests[key]}\n")
    out.write(f"checked {checked}, mismatched {mismatched}\n")
    return mismatched


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config/splitgate.toml")
    ap.add_argument("--access-log", help="check this exposure log (JSON lines; - for stdin) instead")
    ap.add_argument("user_ids", nargs="*", help="user ids, or - to read one per line from stdin")
    args = ap.parse_args()
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    if args.access_log:
        src = sys.stdin if args.access_log == "-" else open(args.access_log, encoding="utf-8")
        with src:
            return 1 if check_log(cfg, src, sys.stdout) else 0
    if not args.user_ids:
        ap.error("give user ids (or -), or --access-log")
    split = cfg["split"]
    variants = split["variants"]
    table = layout(variants)
    ids = args.user_ids
    if ids == ["-"]:
        ids = [line.rstrip("\n") for line in sys.stdin if line.rstrip("\n")]
    out = sys.stdout
    for uid in ids:
        v = variants[table[bucket(split["salt"], uid)]]
        # An interleaving arm serves both of its models: `A+B`.
        model = "+".join(v["interleave"]) if "interleave" in v else v["model"]
        out.write(f"{uid}\t{v['name']}\t{model}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
