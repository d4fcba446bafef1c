"""The PyTorch peer of a benchmark in its own process, driven command by command from the TensorFlow side.

Why: PyTorch's CPU speed collapses when its OpenMP threads spin-wait on cores that something else wants
(TensorFlow's thread pools in the same process, or the other jobs on a shared machine). Measured on the
2-core machine at load ~4.5, HF `BertModel` (6 layers, H=384) batch 1 x seq 128, p50 over 20 calls:
alone 256 ms with the default OpenMP wait policy, 70 ms with `OMP_WAIT_POLICY=PASSIVE`; after
`import tensorflow` 1334 ms (default) vs 68 ms (passive). So a bench that compares against Hugging Face
starts itself again as a child (`python <script> --peer_child <flags>`) that never imports TensorFlow and
runs with `OMP_WAIT_POLICY=PASSIVE` (unless the caller's environment sets it), and asks it for one unit of
work at a time (a timed window, a call, an epoch). Timing is done inside the child, so the pipe round trip
is not counted, and the parent interleaves its own windows with the child's so machine load hits both.

Protocol: one JSON line per command (`[name, *args]`) on the child's stdin, one JSON line back
(`{"result": ...}` or `{"error": traceback}`) on a private copy of its stdout; anything the child prints
(progress, library warnings) goes to stderr, so it cannot corrupt the channel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

CHILD_FLAG = "--peer_child"


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of `fn` takes; both sides time their own work with it (no pipe time counted)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def passive_openmp() -> None:
    """Passive OpenMP waiting for this process unless already chosen; call before importing torch."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def peer_environment() -> dict[str, str]:
    """This process's environment, plus passive OpenMP waiting for PyTorch unless already chosen."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def run_separately(script: str, argv: Sequence[str], flag: str, values: Sequence[str]) -> None:
    """Runs `python <script> *argv --<flag>=<value>` for each value in turn: each side in its own process.

    For benches whose sides only need to share files (results written per side): the PyTorch side then
    never runs where TensorFlow was loaded. The last `--<flag>` on a command line wins (argparse, absl).
    """
    for value in values:
        command = [sys.executable, os.path.abspath(script), *argv, f"--{flag}={value}"]
        code = subprocess.run(command, env=peer_environment()).returncode
        if code != 0:
            raise RuntimeError(f"exit code {code}: {' '.join(command)}")


def check_not_loaded(modules: Sequence[str] = ("tensorflow",), doing: str = "the PyTorch side") -> None:
    """Raises if one of `modules` is loaded here: timings of `doing` would not be representative."""
    loaded = [module for module in modules if module in sys.modules]
    if loaded:
        raise RuntimeError(f"{loaded} got imported in the process running {doing}; its timings would not be "
                           "representative (see bench/peer_process.py)")


class PeerProcess:
    """`python <script> --peer_child *args` as a child; `ask()` runs one command there and returns its result."""

    def __init__(self, script: str, args: Sequence[str] = ()):
        self.command_line = [sys.executable, os.path.abspath(script), CHILD_FLAG, *args]
        self.process = subprocess.Popen(self.command_line, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=peer_environment())

    def ask(self, command: str, *args: Any) -> Any:
        """Sends `command(*args)` to the child, waits for its answer; a failure there raises here."""
        try:
            self.process.stdin.write(json.dumps([command, *args]) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the child is gone; reported below with its exit code
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"peer process died during {command!r} (exit code {self.process.wait()}; "
                               f"its stderr is above): {' '.join(self.command_line)}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"peer process failed on {command!r}:\n{reply['error']}")
        return reply["result"]

    def close(self) -> None:
        """Ends the child (EOF on its stdin) and checks that it exited cleanly."""
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        code = self.process.wait()
        if code != 0:
            raise RuntimeError(f"peer process exited with code {code}: {' '.join(self.command_line)}")

    def __enter__(self) -> "PeerProcess":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # already failing: do not mask the error, just make sure the child does not linger
            self.process.kill()
            self.process.wait()


def serve(handlers: Mapping[str, Callable[..., Any]], forbidden: Sequence[str] = ("tensorflow",)) -> None:
    """The child's loop: answers commands until stdin closes. `forbidden` modules must never get loaded here."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints (Python or C) go to stderr from now on
    for line in sys.stdin:
        name, *args = json.loads(line)
        try:
            if name not in handlers:
                raise ValueError(f"unknown command {name!r}; known: {sorted(handlers)}")
            reply = {"result": handlers[name](*args)}
            check_not_loaded(forbidden, f"peer command {name!r}")
        except Exception:  # noqa: BLE001 - reported to the parent, which raises it
            reply = {"error": traceback.format_exc()}
        channel.write(json.dumps(reply) + "\n")
        channel.flush()
