#!/usr/bin/env python3
"""Serves the hello-app site on 127.0.0.1 until stopped (port from HELLO_APP_PORT, default 8089)."""
import functools
import http.server
import os
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "public")
port = int(os.environ.get("HELLO_APP_PORT", "8089"))
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
handler.log_message = lambda *args: None
with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
    print(f"serving {root} on 127.0.0.1:{port}", file=sys.stderr)
    server.serve_forever()
