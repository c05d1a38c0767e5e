"""Network facts of this host, read-only: its primary address and who listens on a TCP port."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from typing import NamedTuple


def primary_ip() -> str:
    """The address of the interface that holds the default route (no packet is sent); 127.0.0.1 without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 1))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


class Listener(NamedTuple):
    ip: str
    name: str | None  # None: a process this user may not see
    holder: str  # "ollama (pid 812)", for messages


def listeners(port: int) -> list[Listener]:
    """Sockets listening on TCP `port` on this machine, with the process holding each where it is visible."""
    import psutil  # imported where used: render needs only primary_ip(), and every task's start-up counts

    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return []
    found = []
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            name = None
            with contextlib.suppress(psutil.Error):
                name = psutil.Process(conn.pid).name() if conn.pid else None
            holder = f"{name} (pid {conn.pid})" if name else "a process this user cannot see (run as root to name it)"
            found.append(Listener(conn.laddr.ip, name, holder))
    return found


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def is_local(host: str) -> bool:
    """Whether `host` is this machine: only then can psutil say who holds the port."""
    try:
        resolved = {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError:
        return False
    import psutil

    mine = {addr.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for addr in addrs}
    return any(is_loopback(ip) or ip in mine for ip in resolved)
