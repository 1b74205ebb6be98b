"""Locust traffic for splitgate: realistic users, plus split and stickiness checks.

    locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:8080

Traffic: end users drawn from an id space of SPLITGATE_USERS ids (default 100000) with a Zipf
distribution (exponent SPLITGATE_ZIPF_S, default 0.9), so popular users come back many times;
SPLITGATE_FEEDBACK_RATE (default 0.2) of recommendations are followed by a click event for one of
the returned items. The key comes from SPLITGATE_API_KEY (default: the demo key).

Checks (a violation fails the request, or the run at exit):
- every /recommend answer is 200 JSON for the same user_id and carries x-splitgate-variant naming
  a variant that GET /health lists;
- a user keeps the variant of their first answer for the whole run, and /feedback answers (202)
  attribute the event to that same variant;
- over distinct users, each variant's share is within SPLITGATE_SPLIT_Z (default 4) standard
  errors of its configured weight (read from GET /health at start), i.e. a false alarm in about
  one run in 15000 per variant; fewer than SPLITGATE_MIN_USERS (default 200) distinct users fails
  the run as too short to judge.
The per-variant split and requests/s, p50/p95/p99 and failures are printed at exit.
"""

import bisect
import itertools
import json
import math
import os
import random
import sys
import urllib.request
from collections import Counter

from locust import FastHttpUser, between, events, task

API_KEY = os.environ.get("SPLITGATE_API_KEY", "splitgate-demo-key")
USERS = int(os.environ.get("SPLITGATE_USERS", "100000"))
ZIPF_S = float(os.environ.get("SPLITGATE_ZIPF_S", "0.9"))
FEEDBACK_RATE = float(os.environ.get("SPLITGATE_FEEDBACK_RATE", "0.2"))
SPLIT_Z = float(os.environ.get("SPLITGATE_SPLIT_Z", "4"))
MIN_USERS = int(os.environ.get("SPLITGATE_MIN_USERS", "200"))

# Cumulative Zipf weights over ranks 1..USERS; a uniform draw bisected into it gives a rank.
_CDF = list(itertools.accumulate(1.0 / (rank**ZIPF_S) for rank in range(1, USERS + 1)))


def draw_user_id():
    return f"u{bisect.bisect_left(_CDF, random.random() * _CDF[-1]) + 1}"


class Run:
    """State shared by all simulated clients of this (single) Locust process."""

    weights = {}  # variant name -> configured weight, from the admin listener's GET /health
    assigned = {}  # user id -> variant of that user's first answer
    requests_per_variant = Counter()
    sticky_violations = 0


@events.test_start.add_listener
def load_weights(environment, **_kwargs):
    # The main /health tells status only; the weights are on the admin listener's.
    admin = os.environ.get("SPLITGATE_ADMIN_URL", "http://127.0.0.1:9901")
    url = f"{admin.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            health = json.load(response)
        Run.weights = {v["name"]: float(v["weight"]) for v in health["variants"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"splitgate-loadtest: cannot read variant weights from {url}: {exc}", file=sys.stderr)
        environment.process_exit_code = 2
        environment.runner.quit()
        return
    shown = ", ".join(f"{name}={weight:g}" for name, weight in Run.weights.items())
    print(f"splitgate-loadtest: configured weights from /health: {shown}")


class SplitgateClient(FastHttpUser):
    """One API client (an app server) sending requests on behalf of many end users."""

    wait_time = between(0.0, 0.05)
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}

    @task
    def recommend(self):
        user_id = draw_user_id()
        body = {"user_id": user_id, "context": {"surface": "home", "num_items": 10}}
        with self.client.post(
            "/recommend", json=body, headers=self.headers, name="/recommend", catch_response=True
        ) as response:
            variant = self.check_recommend(response, user_id)
            if variant is None:
                return
            request_id = response.headers.get("x-request-id", "")
            items = response.json().get("items") or []
        if items and random.random() < FEEDBACK_RATE:
            self.feedback(user_id, random.choice(items).get("item_id"), request_id, variant)

    def check_recommend(self, response, user_id):
        """Validate one /recommend answer; return its variant, or None after marking a failure."""
        if response.status_code != 200:
            response.failure(f"status {response.status_code}: {response.text[:200]}")
            return None
        variant = response.headers.get("x-splitgate-variant")
        if not variant:
            response.failure("no x-splitgate-variant header")
            return None
        if variant not in Run.weights:
            response.failure(f"variant {variant!r} is not configured in /health")
            return None
        try:
            payload = response.json()
        except ValueError:
            response.failure("body is not JSON")
            return None
        if payload.get("user_id") != user_id or not isinstance(payload.get("items"), list):
            response.failure(f"unexpected body for {user_id}: {response.text[:200]}")
            return None
        first = Run.assigned.setdefault(user_id, variant)
        if first != variant:
            Run.sticky_violations += 1
            response.failure(f"stickiness: {user_id} got {variant} after {first}")
            return None
        Run.requests_per_variant[variant] += 1
        response.success()
        return variant

    def feedback(self, user_id, item_id, request_id, variant):
        event = {"user_id": user_id, "item_id": item_id, "event": "click", "request_id": request_id}
        with self.client.post(
            "/feedback", json=event, headers=self.headers, name="/feedback", catch_response=True
        ) as response:
            if response.status_code != 202:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
            elif response.headers.get("x-splitgate-variant") != variant:
                got = response.headers.get("x-splitgate-variant")
                response.failure(f"feedback for {user_id} attributed to {got!r}, recommendations came from {variant!r}")
            else:
                response.success()


def split_verdict():
    """Compare the split over distinct users with the weights; return (report lines, ok)."""
    users = len(Run.assigned)
    total_weight = sum(Run.weights.values())
    counts = Counter(Run.assigned.values())
    lines = [f"per-variant split over {users} distinct users (tolerance: {SPLIT_Z:g} standard errors):"]
    ok = users >= MIN_USERS and total_weight > 0
    if users < MIN_USERS:
        lines.append(f"  FAIL: fewer than {MIN_USERS} distinct users; run longer to judge the split")
    for name, weight in Run.weights.items():
        expected = weight / total_weight if total_weight else 0.0
        observed = counts[name] / users if users else 0.0
        tolerance = SPLIT_Z * math.sqrt(expected * (1 - expected) / users) if users else 0.0
        within = abs(observed - expected) <= tolerance
        ok = ok and within
        lines.append(
            f"  {name:<12} users={counts[name]:<7} observed={observed:7.2%} expected={expected:7.2%} "
            f"+/-{tolerance:6.2%}  requests={Run.requests_per_variant[name]:<7} {'ok' if within else 'FAIL'}"
        )
    stray = set(counts) - set(Run.weights)
    if stray:
        ok = False
        lines.append(f"  FAIL: variants not in /health: {sorted(stray)}")
    lines.append(f"stickiness: {Run.sticky_violations} violation(s)")
    return lines, ok and Run.sticky_violations == 0


@events.quitting.add_listener
def report(environment, **_kwargs):
    if not Run.weights:
        return  # the run never started; load_weights said why
    total = environment.stats.total
    print(
        f"\nsplitgate-loadtest: {total.num_requests} requests, {total.total_rps:.1f} req/s, "
        f"p50={total.get_response_time_percentile(0.5):.0f} ms "
        f"p95={total.get_response_time_percentile(0.95):.0f} ms "
        f"p99={total.get_response_time_percentile(0.99):.0f} ms, failures={total.num_failures}"
    )
    lines, ok = split_verdict()
    print("splitgate-loadtest: " + "\n".join(lines))
    if not ok:
        environment.process_exit_code = 1
    elif total.num_requests == 0:
        print("splitgate-loadtest: FAIL: no requests were sent")
        environment.process_exit_code = 1
