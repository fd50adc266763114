"""Small helpers shared by tests that run processes."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together so they are distinct)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports
