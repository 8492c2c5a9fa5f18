"""Loopback port helpers for the engines that infra/ launches."""

from __future__ import annotations

import socket
from collections.abc import Collection

LOOPBACK = "127.0.0.1"


def free_port(exclude: Collection[int] = ()) -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The port is only free at the time of the call; whoever uses it should still
    expect a race. Ports in `exclude` are never returned, so that two ports picked
    one after the other for the same service cannot collide.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in exclude:
            return port


def free_port_pair() -> int:
    """Return a port P on 127.0.0.1 such that P and P + 1 are both free now,
    for services that take the next port too (the embedded broker's
    controller)."""
    while True:
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port


def port_is_free(port: int) -> bool:
    """Tell whether a server could listen on 127.0.0.1:`port` now.

    SO_REUSEADDR is set so that connections of a server that just stopped, still in
    TIME_WAIT, do not count as taking the port: only a live listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True
