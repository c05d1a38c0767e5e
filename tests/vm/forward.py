#!/usr/bin/python3
"""A TCP forwarder run in the guest (test plumbing, not the product): `forward.py LISTEN_PORT HOST PORT` accepts on
every address of the guest and relays each connection to HOST:PORT. The LiteLLM container's key-API stand-in forwards
to host.docker.internal:4001, as in the integration session; in the guest that is the guest itself, and this relays
it through qemu's NAT (10.0.2.2 is the host's loopback) to the real LiteLLM proxy the tests run on the host."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading


def pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Relay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream = socket.create_connection((TARGET_HOST, TARGET_PORT), timeout=30)
        upstream.settimeout(None)
        back = threading.Thread(target=pipe, args=(upstream, self.request), daemon=True)
        back.start()
        pipe(self.request, upstream)
        back.join()
        upstream.close()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    LISTEN, TARGET_HOST, TARGET_PORT = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    with Server(("0.0.0.0", LISTEN), Relay) as server:
        server.serve_forever()
