"""Request bodies for loadtest/soak.sh: 20,000 `POST /recommend` JSON bodies, one a line.

    python3 soak_bodies.py OUT_FILE

User ids are Pareto-distributed (a few users very often, a long tail) from a fixed seed, so every
soak sends the same bodies. oha (-Z) and k6 (loadtest/k6/soak.js) both read OUT_FILE.
Standard library only.
"""
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for _ in range(20000):
        f.write('{"user_id":"u%d","context":{"page":"home"}}\n' % int(random.paretovariate(0.9) * 10))
