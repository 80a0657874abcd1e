"""A small blocking AMI client for the tests, written from the AMI protocol as
Asterisk's manager.c speaks it (not from the bridge's code): a banner line
``Asterisk Call Manager/<version>``, then packets of ``Key: Value`` lines ended by
an empty line, each a ``Response`` (matched by ``ActionID``) or an ``Event``."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable

Packet = dict[str, list[str]]


def first(packet: Packet, key: str, default: str = "") -> str:
    values = packet.get(key.lower())
    return values[0] if values else default


class AmiClient:
    def __init__(self, port: int, username: str, secret: str, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(None)
        self._file = self.sock.makefile("rb")
        self._reader: threading.Thread | None = None
        self._closing = False
        try:  # an Asterisk still starting refuses us: then leave no socket behind
            self.banner = self._file.readline().decode().strip()
            if not self.banner.startswith("Asterisk Call Manager/"):
                raise RuntimeError(f"not an AMI banner: {self.banner!r}")
            self.packets: list[Packet] = []
            self._seen = threading.Condition()
            self._ids = itertools.count(1)
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
            reply = self.action("Login", Username=username, Secret=secret)
            if first(reply, "Response") != "Success":
                raise RuntimeError(f"AMI login failed: {first(reply, 'Message')}")
        except BaseException:
            self._release()
            raise

    def _read(self) -> None:
        try:
            self._read_packets()
        except (OSError, ValueError):
            if not self._closing:  # the end of a connection we close is no error
                raise

    def _read_packets(self) -> None:
        packet: Packet = {}
        for raw in self._file:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                if packet:
                    with self._seen:
                        self.packets.append(packet)
                        self._seen.notify_all()
                packet = {}
                continue
            key, _, value = line.partition(":")
            packet.setdefault(key.strip().lower(), []).append(value.strip())

    def send(self, action: str, **headers: str) -> str:
        action_id = f"test-{next(self._ids)}"
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id

    def action(self, action: str, timeout: float = 10.0, **headers: str) -> Packet:
        action_id = self.send(action, **headers)
        return self.wait(lambda p: first(p, "ActionID") == action_id and "response" in p, timeout)

    def command(self, command: str) -> str:
        reply = self.action("Command", Command=command)
        return "\n".join(reply.get("output", []))

    def wait(self, match: Callable[[Packet], bool], timeout: float) -> Packet:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for packet in self.packets:
                    if match(packet):
                        return packet
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching AMI packet in time")
                self._seen.wait(left)

    def events(self, name: str) -> list[Packet]:
        with self._seen:
            return [p for p in self.packets if first(p, "Event") == name]

    def close(self) -> None:
        self._closing = True  # Asterisk may reset the connection as soon as it logs us off
        with contextlib.suppress(OSError):
            self.send("Logoff")
        self._release()

    def _release(self) -> None:
        """Close the connection for good: the socket's file descriptor stays open while
        its makefile() reader does, so the reader thread is stopped and joined first."""
        self._closing = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # the reader sees the end of the stream
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)
        self._file.close()
        self.sock.close()
