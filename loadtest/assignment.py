#!/usr/bin/env python3
"""Recompute splitgate's user -> variant assignment offline (Python standard library only).

    python3 loadtest/assignment.py --config config/splitgate.toml USER_ID...
    cut -f1 users.tsv | python3 loadtest/assignment.py --config config/splitgate.toml -

Prints `user_id<TAB>variant<TAB>model`, exactly like `splitgate route`.

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config/splitgate.toml")
    ap.add_argument("user_ids", nargs="+", help="user ids, or - to read one per line from stdin")
    args = ap.parse_args()
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    split = cfg["split"]
    variants = split["variants"]
    table = layout(variants)
    ids = args.user_ids
    if ids == ["-"]:
        ids = [line.rstrip("\n") for line in sys.stdin if line.rstrip("\n")]
    out = sys.stdout
    for uid in ids:
        v = variants[table[bucket(split["salt"], uid)]]
        out.write(f"{uid}\t{v['name']}\t{v['model']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
