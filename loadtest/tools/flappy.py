"""The `flappy` shadow model of loadtest/soak.sh: an http.server answering every POST with a
fixed list of three items.

    python3 flappy.py PORT

Serves on 127.0.0.1:PORT until killed (soak.sh starts and stops it every 10 s), with TCP_NODELAY
and a listen backlog of 128. Connections that splitgate abandons (its 200 ms shadow timeout) are
reported on stderr. Standard library only.
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b'{"items":[{"item_id":"f1"},{"item_id":"f2"},{"item_id":"f3"}]}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server sends the head and the body in two writes; without TCP_NODELAY the body waits
    # for a delayed ACK on a kept-alive connection (~40 ms a request; /work/shared/TOOLING.md).
    disable_nagle_algorithm = True

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Above splitgate's shadow max_in_flight (64 by default): the default backlog of 5 drops SYNs.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # splitgate gave up on the shadow call (its 200 ms timeout) and closed the connection.
        print(f"client {client_address} went away: {sys.exc_info()[1]!r}", file=sys.stderr)


Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
