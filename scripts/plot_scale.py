"""Draws one PNG per scale curve (issue #30) from docs/perf/scale.csv.

Each CSV row is one measured figure: `curve,series,x,y`, as printed by
scripts/bench-scale.sh (small and full sizes, and the baselines it prints beside them).
The curves' titles and axes are declared once below; a curve without rows is skipped.
Run through scripts/plot-scale.sh (it makes the venv with matplotlib).
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURVES = {
    "verify_rss": ("verify --repair of users: peak RSS", "users", "peak RSS (MiB)"),
    "processed_apply": (
        "apply rate with remembered event ids",
        "ids in processed_events",
        "events/s (batches of 100)",
    ),
    "processed_prune": ("prune of remembered event ids", "ids pruned", "seconds"),
    "drain_table": (
        "worker drain of the same events, by users already in the table",
        "users in the table",
        "events/s",
    ),
    "lazy_latency": ("lazy sync latency, by users in the table", "users in the table", "ms"),
    "backfill": ("backfill of users: wall time", "users", "seconds"),
}


def main(csv_path: Path, out_dir: Path) -> None:
    data = defaultdict(lambda: defaultdict(list))
    with csv_path.open() as f:
        for row in csv.DictReader(f):
            data[row["curve"]][row["series"]].append((float(row["x"]), float(row["y"])))
    for name, (title, xlabel, ylabel) in CURVES.items():
        if name not in data:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        for series, points in data[name].items():
            points.sort()
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=series)
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel(xlabel + " (log scale)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / f"{name}.png")
        plt.close(fig)
        print(f"{out_dir / (name + '.png')}")


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else root / "docs/perf/scale.csv",
        root / "docs/perf",
    )
