"""moto's S3 server (SigV4 checked as usual) with two changes for the ranged-download benchmark
(benches/ranged_s3.py) and the test of the daemon's download progress
(tests/support/moto.rs); run as `python3 paced_moto.py -H <host> -p <port>` (moto's server
arguments) with PACE_BYTES_PER_SEC set.

1. Every connection the server accepts is paced: SO_MAX_PACING_RATE is set on the accepted
   socket, so the kernel sends each TCP flow at no more than that rate. Why this and not
   `tc qdisc ... fq maxrate`: this kernel has no fq qdisc; since Linux 4.13 TCP paces itself
   when a socket asks for a maximum pacing rate and no fq qdisc is present (the socket's
   pacing status becomes "needed" and the TCP stack spaces its segments with a high-resolution
   timer). The cap is per socket, i.e. per TCP flow and per direction (server to client), which
   is what S3's per-connection ceiling is.
2. A ranged GET reads only its range. moto 5.2 builds every GET's body from the whole object
   (`key.value` reads all of it, then `_handle_range_header` slices it), so each 8 MiB part of a
   2 GiB object would read and copy 2 GiB; real S3 does not. Here `key.value` returns a lazy
   view during a GET that carries a Range header, and the slice seeks and reads just the range.
   Everything else (authentication, headers, If-Match, Content-Range, version ids) is moto's.
"""

import os
import socket
import socketserver
import sys
import threading

SO_MAX_PACING_RATE = 47  # <asm-generic/socket.h>
RATE = int(os.environ["PACE_BYTES_PER_SEC"])

_accept = socketserver.TCPServer.get_request


def _paced_accept(self):
    sock, addr = _accept(self)
    sock.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, RATE)
    return sock, addr


socketserver.TCPServer.get_request = _paced_accept

from moto.s3 import models as s3_models  # noqa: E402
from moto.s3 import responses as s3_responses  # noqa: E402

_ranged = threading.local()
_value = s3_models.FakeKey.value


class _LazyRange:
    """len() and one slice of a key's bytes, read from its buffer only when sliced."""

    def __init__(self, key):
        self.key = key

    def __len__(self):
        return self.key.contentsize

    def __getitem__(self, span):
        with self.key.lock:
            self.key._value_buffer.seek(span.start)
            return self.key._value_buffer.read(span.stop - span.start)


def _value_getter(key):
    if getattr(_ranged, "on", False):
        return _LazyRange(key)
    return _value.fget(key)


s3_models.FakeKey.value = property(_value_getter, _value.fset)
_get_object = s3_responses.S3Response.get_object


def _get_object_ranged(self):
    ranged = bool(self.headers.get("range")) and not self._get_int_param("partNumber")
    _ranged.on = ranged
    try:
        return _get_object(self)
    finally:
        _ranged.on = False


s3_responses.S3Response.get_object = _get_object_ranged

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
