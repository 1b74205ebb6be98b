"""Print N distinct free TCP ports on 127.0.0.1, space-separated on one line.

    python3 free_ports.py N

Binds N sockets to port 0 at once (so the ports differ), prints their ports, closes them. Used by
loadtest/lib.sh (free_ports) and loadtest/compare.sh. Standard library only.
"""
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
