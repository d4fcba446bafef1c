"""The short sweep behind `configs/cpu_small.flags`: runs `python -m bert_keras.pretrain` itself for a few
hundred steps per candidate and records, per logged loop, wall time, the process's CPU time and the load
average, so that a speed measured on a shared machine can be scaled to an idle one.

    nice -n 10 python bench/cpu_small_sweep.py --name=mini_s128_b32 --log_dir=../runs/sweep -- \
        --flagfile=configs/cpu_small.flags --preset=mini --num_train_steps=200 --output_dir=../runs/sweep/x

Everything after `--` goes to the pre-training CLI unchanged. Prints one JSON line: steady-state steps/s
(loops after the first two, i.e. after tracing), CPU seconds per step, cores used (CPU s / wall s), the
1-minute load average seen during the run, and the last train and held-out eval metrics. The log and that
JSON line are written to `<log_dir>/<name>.log` / `<log_dir>/<name>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STEP = re.compile(r"^step (\d+)/(\d+) (.*) eta=")
_EVAL = re.compile(r"^(eval at step \d+|final held-out eval): (.*)$")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children (/proc/<pid>/stat fields 14-17)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _load1() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def _values(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in text.split())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--log_dir", required=True)
    p.add_argument("pretrain_args", nargs=argparse.REMAINDER)
    args = p.parse_args()
    cli = [a for a in args.pretrain_args if a != "--"]
    os.makedirs(args.log_dir, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    log = open(os.path.join(args.log_dir, args.name + ".log"), "w")
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "bert_keras.pretrain", *cli], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marks, loads, train, evals = [], [], {}, []
    for line in proc.stdout:
        log.write(line)
        log.flush()
        now = time.time()
        m = _STEP.match(line)
        if m:
            marks.append((int(m.group(1)), now, _cpu_seconds(proc.pid)))
            loads.append(_load1())
            train = _values(m.group(3))
        e = _EVAL.match(line.strip())
        if e:
            evals.append({"at": e.group(1), **_values(e.group(2))})
    proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"pretrain failed ({proc.returncode}); see {log.name}")
    # Steady state: from the end of the 2nd logged loop (tracing done) to the last one before the final eval.
    (s0, t0, c0), (s1, t1, c1) = marks[min(1, len(marks) - 2)], marks[-1]
    result = {
        "name": args.name, "args": cli, "steps_per_sec": (s1 - s0) / (t1 - t0),
        "cpu_sec_per_step": (c1 - c0) / (s1 - s0), "cores_used": (c1 - c0) / (t1 - t0),
        "load1_mean": sum(loads) / len(loads), "load1_max": max(loads), "wall_sec": time.time() - start,
        "measured_steps": s1 - s0, "train": train, "evals": evals,
    }
    line = json.dumps(result)
    print(line)
    with open(os.path.join(args.log_dir, args.name + ".json"), "w") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
