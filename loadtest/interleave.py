#!/usr/bin/env python3
"""Recompute splitgate's interleaved answers offline (Python standard library only).

    python3 loadtest/interleave.py --config config/splitgate.toml --variant interleave-v23 CASES.jsonl

Each line of CASES.jsonl is one request of an interleaving arm:

    {"user_id": "u1",
     "answer_a": {...}, "answer_b": {...},   # the two models' answers (JSON, or JSON text)
     "log": {...},                           # the proxy's access-log line for the request
     "served": {...},                        # optional: the body the client got
     "teams": "..."}                         # optional: x-splitgate-teams, for a caller's own id

For each case it recomputes, from the config's salt, the user id, the logged request id and the two
answers, the team-draft merge, and checks it against what the proxy logged and sent: the `teams`
letters of the access log, the team code (in a minted `<id>.<code>` request id, or `teams`), and the
served body (the first model's answer with its list replaced by the merged items). It prints one
line per case and exits 1 if any case disagrees.

The definitions (the contract with every splitgate replica and release; see src/interleave/):
  seed  = int.from_bytes(sha256(salt + b"\\0" + user_id + b"\\0" + request_id)[:8], "big")
          (request_id: the id the models were called with, i.e. without ".<code>")
  coins = bit i%64 (least significant first) of word i//64; word 0 = seed,
          word j+1 = splitmix64(word j)
  merge = team draft: while the page has fewer than k items, each team's next item is its first
          id not yet on the page; if only one team has one, it picks; else the smaller team picks,
          and on equal sizes coin 1 means A picks, coin 0 means B
  fingerprint(item) = splitmix64(fnv1a64(request_id + b"\\0" + item_id)) >> 48
  code  = base64url_nopad(payload + sha256(salt\\0 variant\\0 request_id\\0 payload)[:4]),
          payload = [1, n] + B-mask (ceil(n/8) bytes, little-endian bits) + n big-endian fingerprints
"""
import argparse
import base64
import copy
import hashlib
import json
import sys
import tomllib

MASK64 = (1 << 64) - 1


def seed(salt: str, user_id: str, request_id: str) -> int:
    digest = hashlib.sha256(salt.encode() + b"\0" + user_id.encode() + b"\0" + request_id.encode()).digest()
    return int.from_bytes(digest[:8], "big")


def splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def coins(s: int):
    word = s
    while True:
        for i in range(64):
            yield (word >> i) & 1 == 1
        word = splitmix64(word)


def team_draft(a: list, b: list, k: int, s: int) -> list:
    """[(team, index into that team's list)] for each position."""
    flips = coins(s)
    picks, used = [], set()
    na = nb = 0
    ia = ib = 0
    while len(picks) < k:
        while ia < len(a) and a[ia] in used:
            ia += 1
        while ib < len(b) and b[ib] in used:
            ib += 1
        has_a, has_b = ia < len(a), ib < len(b)
        if not has_a and not has_b:
            break
        if has_a and not has_b:
            team = "A"
        elif has_b and not has_a:
            team = "B"
        elif na < nb:
            team = "A"
        elif nb < na:
            team = "B"
        else:
            team = "A" if next(flips) else "B"
        if team == "A":
            picks.append(("A", ia))
            used.add(a[ia])
            ia, na = ia + 1, na + 1
        else:
            picks.append(("B", ib))
            used.add(b[ib])
            ib, nb = ib + 1, nb + 1
    return picks


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & MASK64
    return h


def fingerprint(request_id: str, item_id: str) -> int:
    return splitmix64(fnv1a64(request_id.encode() + b"\0" + item_id.encode())) >> 48


def encode(salt: str, variant: str, request_id: str, b_mask: int, fps: list) -> str:
    n = len(fps)
    payload = bytes([1, n]) + b_mask.to_bytes((n + 7) // 8, "little") + b"".join(f.to_bytes(2, "big") for f in fps)
    tag = hashlib.sha256(b"\0".join(x.encode() for x in (salt, variant, request_id)) + b"\0" + payload).digest()[:4]
    return base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode()


def verifies(salt: str, variant: str, request_id: str, code: str) -> bool:
    """The code's tag matches (salt, variant, request_id)."""
    try:
        raw = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
    except ValueError:
        return False
    if len(raw) < 6:
        return False
    payload, tag = raw[:-4], raw[-4:]
    want = hashlib.sha256(b"\0".join(x.encode() for x in (salt, variant, request_id)) + b"\0" + payload).digest()[:4]
    return tag == want


def pointer_get(doc, pointer: str):
    """RFC 6901, as splitgate reads it (None when the path leads nowhere)."""
    if pointer == "":
        return doc
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and (token == "0" or (token[:1] in "123456789" and token.isdigit())):
            if int(token) >= len(doc):
                return None
            doc = doc[int(token)]
        else:
            return None
    return doc


def pointer_set(doc, pointer: str, value):
    if pointer == "":
        return value
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]
    parent = doc
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last = tokens[-1]
    if isinstance(parent, list):
        parent[int(last)] = value
    else:
        parent[last] = value
    return doc


def scalar_id(v):
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return None


def items(answer, pointer: str, id_field: str, k: int) -> list:
    """[(id, item)] of the first k items that have an id."""
    lst = pointer_get(answer, pointer)
    if not isinstance(lst, list):
        raise ValueError(f"no list at {pointer!r}")
    out = []
    for item in lst:
        if len(out) == k:
            break
        ident = scalar_id(item.get(id_field)) if isinstance(item, dict) else scalar_id(item)
        if ident is not None:
            out.append((ident, item))
    return out


def as_json(v):
    return json.loads(v) if isinstance(v, str) else v


def check(case: dict, salt: str, variant: str, arm: dict) -> list:
    """The list of disagreements (empty when the case checks out)."""
    pointer = arm.get("items_pointer", "/items")
    id_field = arm.get("id_field", "item_id")
    k = arm.get("k", 10)
    log = case["log"]
    problems = []
    if log.get("variant") != variant:
        return [f"logged variant {log.get('variant')!r} is not {variant!r}"]
    outcome = log.get("interleave")
    logged_id = log["requestId"]
    answer_a, answer_b = as_json(case["answer_a"]), as_json(case["answer_b"])
    la, lb = items(answer_a, pointer, id_field, k), items(answer_b, pointer, id_field, k)
    ids_a, ids_b = [i for i, _ in la], [i for i, _ in lb]
    # A caller's own id is the id itself, its code in `teams`; a minted one is "<id>.<code>".
    # As in splitgate, a candidate counts only if its tag verifies.
    candidates = []
    if case.get("teams"):
        candidates.append((logged_id, case["teams"]))
    head, _, tail = logged_id.rpartition(".")
    if head and tail:
        candidates.append((head, tail))
    base, code = next(((b, c) for b, c in candidates if verifies(salt, variant, b, c)), (logged_id, None))
    if outcome in ("merged", "degraded") and code is None:
        problems.append("no verifiable team code in the request id or `teams`")
    if outcome == "degraded":
        # One model's answer, unchanged; its code describes no position.
        if code is not None and code != encode(salt, variant, base, 0, []):
            problems.append("a degraded answer's code is not the empty code")
        served_by = {"a": answer_a, "b": answer_b}.get(log.get("interleaveServed"))
        if "served" in case and as_json(case["served"]) != served_by:
            problems.append(f"degraded body is not model {log.get('interleaveServed')!r}'s answer")
        return problems
    if outcome == "failed":
        return problems
    if outcome != "merged":
        return [f"not an interleaved answer (interleave = {outcome!r})"]
    picks = team_draft(ids_a, ids_b, k, seed(salt, case["user_id"], base))
    teams = "".join(t for t, _ in picks)
    if log.get("teams") != teams:
        problems.append(f"teams: logged {log.get('teams')!r}, recomputed {teams!r}")
    merged_ids = [(ids_a if t == "A" else ids_b)[i] for t, i in picks]
    b_mask = sum(1 << p for p, (t, _) in enumerate(picks) if t == "B")
    want_code = encode(salt, variant, base, b_mask, [fingerprint(base, i) for i in merged_ids])
    if code is not None and code != want_code:
        problems.append(f"team code: got {code!r}, recomputed {want_code!r}")
    if "served" in case:
        merged_items = [(la if t == "A" else lb)[i][1] for t, i in picks]
        want = pointer_set(copy.deepcopy(answer_a), pointer, merged_items)
        if as_json(case["served"]) != want:
            problems.append(f"served body differs from the recomputed merge {merged_ids}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config/splitgate.toml")
    ap.add_argument("--variant", required=True, help="the interleaving arm's name")
    ap.add_argument("cases", help="JSON lines, one request each (see above); - for stdin")
    args = ap.parse_args()
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    split = cfg["split"]
    arm = next((v for v in split["variants"] if v.get("name") == args.variant), None)
    if arm is None or "interleave" not in arm:
        print(f"no interleaving arm named {args.variant!r} in {args.config}", file=sys.stderr)
        return 2
    lines = sys.stdin if args.cases == "-" else open(args.cases, encoding="utf-8")
    checked = bad = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        case = json.loads(line)
        problems = check(case, split["salt"], args.variant, arm)
        checked += 1
        rid = case["log"].get("requestId")
        if problems:
            bad += 1
            print(f"case {n} ({rid}): MISMATCH: " + "; ".join(problems))
        else:
            print(f"case {n} ({rid}): ok {case['log'].get('interleave')} {case['log'].get('teams') or ''}".rstrip())
    print(f"{checked} case(s), {bad} mismatch(es)")
    return 1 if bad or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
