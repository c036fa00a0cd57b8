"""Messages between the service and its stage and transform processes, big buffers sent as they lie.

multiprocessing's `Connection.send` pickles a message into one bytes object (a copy of every
record), and `recv` reads it back in chunks through a BytesIO (two more): for megabytes of
records per call that is most of what the pipe costs. Here a message is pickled with protocol
5, and every large `memoryview` in it travels out of band: written from where it lies and read
into one buffer of its own, which the receiver gets back as a read-only memoryview.

Both ends of a pipe must speak through a Channel. The pipe stays a multiprocessing Connection
(it is what a spawned child is handed, and what `poll` waits on).
"""

from __future__ import annotations

import io
import os
import pickle
import socket
import struct
from multiprocessing.connection import Connection
from typing import Any

# Smaller views are copied into the message: a buffer of their own would cost more than it saves.
OUT_OF_BAND_BYTES = 64 * 1024
_HEAD = struct.Struct("!QI")  # pickle length, number of buffers
_SIZE = struct.Struct("!Q")


def _as_is(value: Any) -> Any:
    return value


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is memoryview:
            if obj.nbytes >= OUT_OF_BAND_BYTES and obj.contiguous:
                return _as_is, (pickle.PickleBuffer(obj.toreadonly()),)
            return bytes, (obj.tobytes(),)
        return NotImplemented


class Channel:
    """`send` and `recv` whole messages over a Connection's socket. One thread may send while
    another receives; EOFError or OSError means the other end is gone."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._socket = socket.socket(fileno=os.dup(conn.fileno()))

    def send(self, message: Any) -> None:
        head = io.BytesIO()
        buffers: list[pickle.PickleBuffer] = []
        _Pickler(head, protocol=5, buffer_callback=buffers.append).dump(message)
        raws = [buffer.raw() for buffer in buffers]
        sizes = b"".join(_SIZE.pack(raw.nbytes) for raw in raws)
        pickled = head.getbuffer()
        self._socket.sendall(_HEAD.pack(pickled.nbytes, len(raws)) + sizes)
        self._socket.sendall(pickled)
        for raw in raws:
            self._socket.sendall(raw)

    def recv(self) -> Any:
        length, count = _HEAD.unpack(self._exactly(_HEAD.size))
        sizes = struct.unpack(f"!{count}Q", self._exactly(_SIZE.size * count))
        pickled = self._exactly(length)
        buffers = [self._exactly(size) for size in sizes]
        return pickle.loads(pickled, buffers=buffers)

    def _exactly(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            read = self._socket.recv_into(view[got:], size - got)
            if read == 0:
                raise EOFError("the other end of the channel closed")
            got += read
        return buffer

    def poll(self, timeout: float) -> bool:
        """Whether a message (or the end of the pipe) is there to read within `timeout`."""
        return self.conn.poll(timeout)

    def close(self) -> None:
        self._socket.close()
        self.conn.close()
