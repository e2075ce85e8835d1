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
import json
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = Path(os.environ.get("CRDSMINI_CONFORMANCE", ROOT.parent / "shared" / "conformance"))


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _rmap_work(per_rmap: int) -> list[tuple]:
    from crdsmini import load_mapping
    from crdsmini.errors import CrdsminiError

    work = []
    for path in sorted((CORPUS / "cases").glob("*.jsonl")):
        cases = _jsonl(path)[:per_rmap or None]
        name = cases[0]["mapping"]
        try:
            rmap = load_mapping(CORPUS / "mappings" / name.split("_")[0].split("-")[0] / name, ignore_checksum=True)
        except CrdsminiError:
            continue
        work.extend((rmap.get_best_ref, case["header"]) for case in cases)
    return work


def _context_work(count: int) -> list[tuple]:
    from crdsmini import load_mapping
    from crdsmini.errors import CrdsminiError

    context = load_mapping(CORPUS / "mappings" / "hst" / "hst_golden_0001.pmap", ignore_checksum=True)

    def call(header: dict) -> None:
        try:
            context.get_best_references(header)
        except CrdsminiError:
            pass

    cases = _jsonl(CORPUS / "contexts" / "hst_golden_0001.pmap.jsonl")[:count]
    return [(call, case["header"]) for case in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("rmaps", "context"))
    parser.add_argument("--per-rmap", type=int, default=40, help="rmaps: cases per rmap (0: all)")
    parser.add_argument("--headers", type=int, default=500, help="context: number of headers")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    work = _rmap_work(args.per_rmap) if args.what == "rmaps" else _context_work(args.headers)
    # Only this line runs inside starmap_next: what callgrind --toggle-collect counts.
    collections.deque(itertools.starmap(lambda function, header: function(header), work), maxlen=0)
    print(f"{len(work)} lookups", file=sys.stderr)


if __name__ == "__main__":
    main()
