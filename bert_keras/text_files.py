"""Reading a task's text files as UTF-8, with errors that name the file, line and column of a bad byte.

Python's own decoder reports a byte offset in a buffer (and a csv/json traceback points somewhere else
entirely); every task reader goes through `read_text` so that one bad byte in a 40 MB TSV says where it is.
"""

from __future__ import annotations

import io
import os


class InvalidUtf8Error(ValueError):
    """A file that is not UTF-8: the message names `path:line:column` and the offending bytes."""


def read_text(path: str | os.PathLike, *, encoding: str = "utf-8") -> str:
    """The whole file decoded (`encoding` "utf-8" or "utf-8-sig", which drops a leading BOM); raises
    `FileNotFoundError` naming a missing file and `InvalidUtf8Error` naming the first undecodable byte."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise InvalidUtf8Error(f"{path}:{line}:{column}: not valid UTF-8 (bytes {data[e.start:e.end]!r}: "
                               f"{e.reason}); re-encode the file as UTF-8") from None


def open_text(path: str | os.PathLike, *, encoding: str = "utf-8", newline: str | None = None) -> io.StringIO:
    """`read_text` as a file object: iterate it for lines exactly as over `open(path, newline=newline)`
    (universal newlines by default; `newline=""` for the csv module)."""
    return io.StringIO(read_text(path, encoding=encoding), newline=newline)
