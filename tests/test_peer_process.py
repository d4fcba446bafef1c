"""bench/peer_process: a child answers commands, its failures and death surface in the parent, and a
module it must not load (TensorFlow, for the PyTorch peers) is caught."""

import pathlib
import sys
import textwrap

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from peer_process import PeerProcess  # noqa: E402

CHILD = textwrap.dedent(f"""
    import os, sys
    sys.path.insert(0, {str(BENCH)!r})
    from peer_process import serve

    assert sys.argv[1] == "--peer_child", sys.argv
    state = {{"offset": int(sys.argv[2])}}

    def add(a, b):
        print("progress output must not reach the channel")
        return a + b + state["offset"]

    def fail():
        raise ValueError("bad window 7")

    def load_forbidden():
        import csv  # stands in for tensorflow

    serve({{"add": add, "fail": fail, "load_forbidden": load_forbidden, "exit": lambda: os._exit(3),
            "policy": lambda: os.environ["OMP_WAIT_POLICY"]}}, forbidden=("csv",))
""")


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return str(path)


def test_commands_errors_and_clean_exit(script, monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with PeerProcess(script, ["10"]) as peer:
        assert peer.ask("add", 1, 2.5) == 13.5  # args and flags arrive; prints went to stderr
        assert peer.ask("policy") == "PASSIVE"
        with pytest.raises(RuntimeError, match="bad window 7"):
            peer.ask("fail")
        with pytest.raises(RuntimeError, match="unknown command 'nope'"):
            peer.ask("nope")
        assert peer.ask("add", 0, 0) == 10  # still serving after errors
        with pytest.raises(RuntimeError, match=r"\['csv'\] got imported"):
            peer.ask("load_forbidden")
        with pytest.raises(RuntimeError, match="got imported"):  # the process stays tainted
            peer.ask("add", 0, 0)
    assert peer.process.returncode == 0


def test_child_death_is_reported(script):
    peer = PeerProcess(script, ["0"])
    with pytest.raises(RuntimeError, match=r"died during 'exit' \(exit code 3"):
        peer.ask("exit")
    with pytest.raises(RuntimeError, match="exited with code 3"):
        peer.close()
