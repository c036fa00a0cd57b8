"""The channel between the service and its child processes: whole messages, big views apart."""

from __future__ import annotations

import multiprocessing
import os
import threading
from typing import Any

import pytest

from transforms.channel import OUT_OF_BAND_BYTES, Channel


def _pair() -> tuple[Channel, Channel]:
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    return Channel(ours), Channel(theirs)


def test_messages_arrive_whole_with_big_views_as_read_only_views() -> None:
    ours, theirs = _pair()
    big = os.urandom(3 * OUT_OF_BAND_BYTES + 7)
    small = b"small record"
    try:
        message: Any = ("answers", [([1, 2], memoryview(big)[5:], {}), (None, memoryview(small))])
        ours.send(message)
        kind, [(lengths, data, others), (nothing, little)] = theirs.recv()
        assert (kind, lengths, others, nothing) == ("answers", [1, 2], {}, None)
        assert isinstance(data, memoryview) and data.readonly and bytes(data) == big[5:]
        assert little == small and isinstance(little, bytes)  # copied into the message
    finally:
        ours.close()
        theirs.close()


def test_one_thread_sends_while_another_receives_in_order() -> None:
    ours, theirs = _pair()
    blobs = [os.urandom(OUT_OF_BAND_BYTES * (1 + i % 5)) for i in range(40)]

    def echo() -> None:
        for _ in blobs:
            theirs.send(theirs.recv())

    echoer = threading.Thread(target=echo)
    echoer.start()
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(bytes(ours.recv()) for _ in blobs))
    reader.start()
    for blob in blobs:
        ours.send(memoryview(blob))
    reader.join(30)
    echoer.join(30)
    try:
        assert received == blobs
    finally:
        ours.close()
        theirs.close()


def test_the_other_end_closing_reads_as_end_of_file() -> None:
    ours, theirs = _pair()
    theirs.close()
    with pytest.raises(EOFError):
        ours.recv()
    ours.close()


def test_what_was_sent_before_a_close_is_read_and_then_end_of_file() -> None:
    ours, theirs = _pair()
    ours.send(memoryview(os.urandom(OUT_OF_BAND_BYTES * 2)))
    ours.close()
    assert len(theirs.recv()) == OUT_OF_BAND_BYTES * 2
    with pytest.raises(EOFError):
        theirs.recv()
    theirs.close()


def test_a_message_cut_short_reads_as_end_of_file() -> None:
    ours, theirs = _pair()
    ours._socket.sendall(b"\x00\x00\x00")  # part of a head, then the sender dies
    ours.close()
    with pytest.raises(EOFError):
        theirs.recv()
    theirs.close()
