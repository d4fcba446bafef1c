"""Checking that an output directory can be written before any long work starts.

A run that trains for an hour and then fails to write its checkpoint or export loses the hour; the check
creates nothing (it writes and removes a probe file in the directory, or in its nearest existing parent
when the directory does not exist yet), and its error names the flag.
"""

from __future__ import annotations

import os
import tempfile


def check_writable(path: str | os.PathLike, flag: str) -> None:
    """Raises `ValueError` naming `--flag` when `path` (a directory, existing or to be created) cannot be
    written: a parent is a file, or the directory or its nearest existing parent refuses a new file."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--{flag}={path!r} is a file, not a directory")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"--{flag}={path!r} cannot be created: {existing!r} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ValueError(f"--{flag}={path!r} is not writable ({existing}: {e.strerror or e})") from None
