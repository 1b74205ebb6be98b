"""Print a running splitgate's variant weights as k6's SPLIT_WEIGHTS wants them.

    python3 health_weights.py HEALTH_URL        # prints e.g. champion=90,challenger=10

Reads GET HEALTH_URL (5 s timeout) and prints name=weight for every variant it lists, comma-
separated. Used by loadtest/k6/run.sh. Standard library only.
"""
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
    health = json.load(response)
print(",".join(f"{v['name']}={v['weight']:g}" for v in health["variants"]))
