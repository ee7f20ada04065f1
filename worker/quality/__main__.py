"""python -m worker.quality [--out DIR] [--no-scaling]: regenerate docs/quality.md and docs/*.png."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from worker.quality import dupeval, enteval, langeval, replayeval, report, storyeval, syndeval
from worker.quality.data import DOCS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.quality", description=__doc__)
    parser.add_argument("--out", type=Path, default=DOCS, help="output folder (default: docs/)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the story-index cost measurement")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    lr = langeval.evaluate()
    dr = dupeval.evaluate()
    er = enteval.evaluate()
    sr = storyeval.evaluate(with_scaling=not args.no_scaling)
    rr = replayeval.evaluate()
    syn = syndeval.evaluate(other_seeds=(1, 2, 3))
    pngs = report.plot_dedup(dr, args.out)
    (args.out / "quality.md").write_text(report.render(lr, dr, er, sr, pngs, rr, syn), encoding="utf-8")
    print(f"wrote {args.out / 'quality.md'} and {', '.join(pngs)} in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
