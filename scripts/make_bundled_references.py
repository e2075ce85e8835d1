#!/usr/bin/env python3
"""Generate the bundled default context's reference files (references/tmt/iris/).

They are deterministic and not committed (the repository stays small); ``make demo`` makes
them when missing.  ``--mappings`` also rewrites mappings/tmt/ and config/tmt/ from the
table in iris_reduce/bundled.py (the committed files must stay identical to that output).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iris_reduce.bundled import DEFAULT_SIZE, REFERENCES, make_references, write_mappings
from iris_reduce.refs import bundled_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None,
                        help="cache root to write into [default: the bundled root]")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="frame size n (n x n)")
    parser.add_argument("--missing-only", action="store_true", help="skip existing files")
    parser.add_argument("--mappings", action="store_true",
                        help="also (re)write the mappings and cache config")
    args = parser.parse_args(argv)
    root = args.root if args.root is not None else bundled_root()
    if args.mappings:
        for path in write_mappings(root):
            print(f"wrote {path}")
    written = make_references(root, args.size, only_missing=args.missing_only)
    print(f"wrote {len(written)} of {len(REFERENCES)} reference files in "
          f"{root / 'references' / 'tmt' / 'iris'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
