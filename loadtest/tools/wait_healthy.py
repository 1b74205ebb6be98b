"""Wait until a just-started splitgate answers 200 on its health URL.

    python3 wait_healthy.py URL PID

Polls URL every 0.1 s for up to 15 s. Exits 0 on the first 200; exits non-zero with a message
when process PID has exited (it died during start-up) or no 200 came within 15 s. Used by
loadtest/lib.sh (start_splitgate). Standard library only.
"""
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("splitgate exited during start-up")
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(f"no 200 from {url} within 15 s")
