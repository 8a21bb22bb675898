"""A job's output on its way to Bosun: bounded, however fast the job prints.

Output waits here between two sends. Past `limit` characters it keeps the first part and the newest part
and counts what it dropped between them, so a job that floods its output costs the executor at most `limit`
characters of memory and the log still shows how it started and how it ended.
"""

import codecs
import os
import threading
from collections import deque

LIMIT = 1024 * 1024
HEAD = 64 * 1024
READ_SIZE = 64 * 1024


class Note(str):
    """The executor's own line in a job's output (counted apart: it is never dropped)."""


class BoundedOutput:
    def __init__(self, limit: int = LIMIT, head: int = HEAD):
        self.limit, self.head_limit = limit, head
        self._lock = threading.Lock()
        self._reset()

    def _reset(self):
        self.head: list[str] = []
        self.head_size = 0
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.skipped = 0

    def note(self, text: str):
        """A line of the executor's own: never dropped, however much output follows it."""
        with self._lock:
            if not self.tail and self.head_size < self.head_limit:
                self.head.append(text)
                self.head_size += len(text)
            else:
                self.tail.append(Note(text))

    def add(self, text: str):
        with self._lock:
            if not self.tail and self.head_size < self.head_limit:
                kept = text[: self.head_limit - self.head_size]
                self.head.append(kept)
                self.head_size += len(kept)
                text = text[len(kept):]
            if not text:
                return
            self.tail.append(text)
            self.tail_size += len(text)
            room = self.limit - self.head_limit
            notes = []
            while self.tail_size > room:
                excess = self.tail_size - room
                oldest = self.tail[0]
                if isinstance(oldest, Note):
                    notes.append(self.tail.popleft())
                elif len(oldest) <= excess:
                    self.tail.popleft()
                    self.tail_size -= len(oldest)
                    self.skipped += len(oldest)
                else:
                    self.tail[0] = oldest[excess:]
                    self.tail_size -= excess
                    self.skipped += excess
            self.tail.extendleft(reversed(notes))

    def take(self) -> str:
        """Everything waiting, with a note where output was dropped; empties the buffer."""
        with self._lock:
            parts = self.head
            if self.skipped:
                parts.append(f"\n[bosun] {self.skipped} characters of output were skipped here: the job printed "
                             "faster than they could be sent\n")
            parts.extend(self.tail)
            self._reset()
        return "".join(parts)


def pump(fd: int, into: BoundedOutput):
    """Read a pipe until it closes, in chunks (a line without an end cannot grow without bound)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        chunk = os.read(fd, READ_SIZE)
        if not chunk:
            break
        into.add(decoder.decode(chunk))
    rest = decoder.decode(b"", final=True)
    if rest:
        into.add(rest)
