#!/usr/bin/env python
"""Lookups to count under callgrind: instruction counts that do not depend on machine noise.

Wall-clock figures on a shared machine move by 10-20 % between runs, more than most single
changes to the lookup path; instruction counts do not move at all.  This script loads the
rules first, then runs only the lookups through ``itertools.starmap``, so callgrind can
count exactly them::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect=starmap_next \\
        .venv/bin/python benchmarks/count_instructions.py rmaps --per-rmap 40
    valgrind ... benchmarks/count_instructions.py context --headers 500

``rmaps``: the first pass over the first N cases of every rmap of the conformance corpus
(fresh rmaps, each case once).  ``context``: the first N cases of hst_golden_0001.pmap
through ``get_best_references``.  Run with PYTHONHASHSEED=0 for identical totals.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import _context_work, _rmap_work  # noqa: E402 - the lookups make bench times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("rmaps", "context"))
    parser.add_argument("--per-rmap", type=int, default=40, help="rmaps: cases per rmap (0: all)")
    parser.add_argument("--headers", type=int, default=500, help="context: number of headers")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.what == "rmaps":
        work = _rmap_work(args.per_rmap)
    else:
        work = _context_work("hst_golden_0001.pmap", args.headers)
    # Only this line runs inside starmap_next: what callgrind --toggle-collect counts.
    collections.deque(itertools.starmap(lambda function, header: function(header), work), maxlen=0)
    print(f"{len(work)} lookups", file=sys.stderr)


if __name__ == "__main__":
    main()
