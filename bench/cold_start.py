"""Cold-start benchmark (not a test): how long each function's handler module takes to import from the `sam build`
output, against a bare handler that imports only boto3 and requests, in the same run.

    python -m bench.cold_start --runs 7                 # table + a JSON last line
    python -m bench.cold_start --importtime WorkerFunction   # the biggest imports of one function (-X importtime)
    python -m bench.cold_start --tracing                # as deployed with the template's Tracing=Active

Each import runs in a fresh interpreter of the local stack (.venv-ministack, Python 3.12 like the Lambda runtime;
its boto3 plays the runtime's), with the sys.path a Lambda has (the function's code, then the layer's python/),
PYTHONDONTWRITEBYTECODE=1 (Lambda's /opt and /var/task are read-only: only bytecode the build ships is used), and
the variables Lambda sets (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, ...) and POWERTOOLS_TRACE_DISABLED as the
template sets it (true unless its parameter Tracing is Active: --tracing). The functions and the bare handler
take turns, so a busy machine weighs on all alike; the figure is the median over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
PYTHON = ROOT / ".venv-ministack" / "bin" / "python"
BARE = "bare (boto3 + requests)"
_PROBE = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"


TRACING = {"POWERTOOLS_TRACE_DISABLED": "true"}  # the template's default (Tracing=PassThrough); --tracing: "false"


def _env(code_dir: Path, name: str, build: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS", "AWS_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(code_dir), str(build / "SharedLayer" / "python")]),
        PYTHONDONTWRITEBYTECODE="1",
        LAMBDA_TASK_ROOT=str(code_dir),
        AWS_LAMBDA_FUNCTION_NAME=name,
        AWS_EXECUTION_ENV="AWS_Lambda_python3.12",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="scrapersky",
        POWERTOOLS_METRICS_NAMESPACE="ScraperSky",
        **TRACING,
    )
    return env


def import_seconds(python: Path, code_dir: Path, name: str, build: Path) -> float:
    out = subprocess.run(
        [str(python), "-c", _PROBE], env=_env(code_dir, name, build), capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def functions(build: Path) -> dict[str, Path]:
    return {d.name: d for d in sorted(build.iterdir()) if (d / "app.py").is_file()}


def layer_bytecode(build: Path) -> bool:
    return any((build / "SharedLayer" / "python" / "scrapersky" / "__pycache__").glob("*.cpython-312.pyc"))


def measure(python: Path, build: Path, runs: int, bare_dir: Path) -> dict[str, list[float]]:
    targets = {BARE: bare_dir, **functions(build)}
    times: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(runs):
        for name, code_dir in targets.items():
            times[name].append(import_seconds(python, code_dir, name, build))
    return times


def report(times: dict[str, list[float]], bytecode: bool) -> dict[str, object]:
    bare = statistics.median(times[BARE])
    traced = TRACING["POWERTOOLS_TRACE_DISABLED"] == "false"
    print(f"layer ships bytecode: {'yes' if bytecode else 'no'}; tracing {'on' if traced else 'off'}; median")
    print(f"{'function':<26}{'median s':>10}{'min s':>9}{'x bare':>9}")
    rows: dict[str, dict[str, float]] = {}
    for name, values in times.items():
        median = statistics.median(values)
        rows[name] = {"median_s": round(median, 4), "ratio": round(median / bare, 2)}
        print(f"{name:<26}{median:>10.3f}{min(values):>9.3f}{median / bare:>9.2f}")
    fns = {k: v for k, v in rows.items() if k != BARE}
    return {
        "bare_s": round(bare, 4),
        "layer_bytecode": bytecode,
        "tracing": traced,
        "max_ratio": max(v["ratio"] for v in fns.values()),
        "worker_ratio": fns.get("WorkerFunction", {}).get("ratio"),
        "status_ratio": fns.get("StatusFunction", {}).get("ratio"),
        "functions": fns,
    }


def importtime(python: Path, build: Path, name: str, top: int) -> None:
    code_dir = functions(build)[name]
    out = subprocess.run(
        [str(python), "-X", "importtime", "-c", "import app"],
        env=_env(code_dir, name, build),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in out.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), int(parts[0]), parts[2].rstrip()))
    print(f"{'cumulative ms':>14}{'self ms':>9}  module")
    for cumulative, own, module in sorted(rows, reverse=True)[:top]:
        print(f"{cumulative / 1000:>14.1f}{own / 1000:>9.1f}  {module}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--build", type=Path, default=BUILD)
    ap.add_argument("--python", type=Path, default=PYTHON)
    ap.add_argument("--importtime", metavar="FUNCTION", help="print the biggest imports of one function instead")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--tracing", action="store_true", help="with X-Ray tracing on (the template's Tracing=Active)")
    args = ap.parse_args()
    TRACING["POWERTOOLS_TRACE_DISABLED"] = "false" if args.tracing else "true"
    if not (args.build / "SharedLayer").is_dir():
        raise SystemExit(f"no {args.build}/SharedLayer: run `make build` first")
    if args.importtime:
        importtime(args.python, args.build, args.importtime, args.top)
        return
    with tempfile.TemporaryDirectory(prefix="scrapersky-bare-") as tmp:
        (Path(tmp) / "app.py").write_text("import boto3\nimport requests\n")
        times = measure(args.python, args.build, args.runs, Path(tmp))
    print(json.dumps(report(times, layer_bytecode(args.build))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
