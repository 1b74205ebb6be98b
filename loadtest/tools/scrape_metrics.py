"""Save a splitgate admin listener's Prometheus page to a file.

    python3 scrape_metrics.py ADMIN_URL FILE

Fetches ADMIN_URL/metrics (5 s timeout) and writes the body to FILE. Exits non-zero when the
fetch fails (loadtest/soak.sh ignores that: a missing file is reported as zero counts).
Standard library only.
"""
import sys, urllib.request
open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=5).read())
