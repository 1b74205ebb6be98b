"""Wait until something accepts TCP connections on 127.0.0.1:PORT.

    python3 wait_listening.py PORT

Tries to connect up to 50 times, 0.1 s apart (about 5 s). Exits 0 on the first connection that
succeeds, 1 when none did. loadtest/soak.sh waits for its forwarder with it. Standard library only.
"""
import socket, sys, time
for _ in range(50):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
