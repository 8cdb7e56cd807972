"""Reading a file that is being written: complete lines only, surviving truncation and rotation."""

from __future__ import annotations

import os
from typing import BinaryIO

from .normalise import split_complete_lines


class FileTail:
    """Polls one path; ``poll()`` returns the complete lines added since the last call.

    A shrinking size means truncation (read again from the start); a new inode at the path means
    rotation (finish the old file, then read the new one from the start). One ``os.stat`` per
    poll keeps it cheap.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: BinaryIO | None = None
        self._ino: int | None = None
        self._offset = 0
        self._buf = b""
        self.lineno = 0  # number of the last complete line returned, in the current file
        self.truncations = 0
        self.rotations = 0

    def poll(self) -> tuple[list[str], int]:
        """New complete lines and the line number of the first of them."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (self._read(), self.lineno + 1) if self._fh else ([], self.lineno + 1)
        out: list[str] = []
        first = self.lineno + 1
        if self._fh is None:
            self._open()
        elif st.st_ino != self._ino:
            out = self._read()  # the rotated file's last lines
            self._fh.close()
            self.rotations += 1
            self._open()
            if out:
                return out, first  # the new file is read on the next poll, numbered from 1
            first = 1
        elif st.st_size < self._offset:
            self.truncations += 1
            self._fh.seek(0)
            self._offset, self._buf, self.lineno = 0, b"", 0
            first = 1
        out.extend(self._read())
        return out, first

    def _open(self) -> None:
        self._fh = open(self.path, "rb")
        self._ino = os.fstat(self._fh.fileno()).st_ino
        self._offset, self._buf, self.lineno = 0, b"", 0

    def _read(self) -> list[str]:
        assert self._fh is not None
        data = self._fh.read()
        if not data:
            return []
        self._offset += len(data)
        lines, self._buf = split_complete_lines(self._buf + data)
        self.lineno += len(lines)
        return lines

    def close(self) -> None:
        """Release the file handle."""
        if self._fh:
            self._fh.close()
            self._fh = None
