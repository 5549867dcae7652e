"""Plots completed pages over time per system (inside the benchmark's own venv, which has matplotlib).

usage: plot.py <series.json> <out.png> <title>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    series = json.loads(Path(sys.argv[1]).read_text())
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name, data in series["systems"].items():
        times = sorted(data["times"])
        ax.step(times, range(1, len(times) + 1), where="post", label=name)
    cap = series["capacity_per_s"]
    ax.plot([0, series["pages"] / cap], [0, series["pages"]], "k:", label=f"capacity ({cap:g} pages/s)")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("pages fetched")
    ax.set_title(sys.argv[3])
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
