"""``make demo``: the main job end to end on a fresh clone.

1. make the bundled references if they are missing (``references/tmt/iris/``);
2. synthesize a raw IRIS frame (IRIS1, H, 2024) through the references the bundled rules
   choose for it;
3. ``crdsmini bestrefs --explain`` on it (the selection, explained);
4. ``iris-reduce reduce`` on it with the bundled context;
5. print the calibrated file's S_*/R_* records and what the same rules choose for other
   dates, detectors and filters;
6. write a PNG preview raw vs calibrated (needs matplotlib, the ``demo`` extra).

Usage: ``python -m iris_reduce.demo [OUTDIR]`` (default ``demo_output``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from iris_reduce import bundled
from iris_reduce.errors import IrisReduceError
from iris_reduce.refs import CrdsResolver, bundled_root

__all__ = ["main"]

DEMO_FRAME = {"detector": "IRIS1", "band": "H", "date": "2024-03-15", "time": "06:12:30"}
OTHER_FRAMES = [
    {"detector": "IRIS1", "band": "H", "date": "2021-06-01", "time": "03:00:00"},
    {"detector": "IRIS1", "band": "K", "date": "2024-03-15", "time": "06:12:30"},
    {"detector": "IRIS3", "band": "Ks", "date": "2022-08-20", "time": "23:45:00"},
]


def _say(text: str = "") -> None:
    print(text, flush=True)


def _command(name: str, module: str) -> list[str]:
    """The console script next to this interpreter, else ``python -m module``."""
    script = Path(sys.executable).with_name(name)
    if script.is_file():
        return [str(script)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", module]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str] | None:
    _say("$ " + " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv)))
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _say(f"  (could not run: {exc})")
        return None


def _indent(text: str, limit: int = 60) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return "\n".join("  " + line for line in lines)


def _preview(raw: Path, calibrated: Path, png: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _say("  matplotlib is not installed (pip install '.[demo]'): PNG preview skipped")
        return False
    with fits.open(raw) as a, fits.open(calibrated) as b:
        before = np.array(a["SCI"].data, dtype=np.float32)
        after = np.array(b["SCI"].data, dtype=np.float32)
        dq = np.array(b["DQ"].data)
    shown = np.where(dq == 0, after, np.nan)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), constrained_layout=True)
    for ax, image, title in ((axes[0], before, f"raw {raw.name}"),
                             (axes[1], after, f"calibrated {calibrated.name}"),
                             (axes[2], shown, "calibrated, DQ != 0 blanked")):
        finite = image[np.isfinite(image)]
        # stretch on the sky, not the stars, so the flat-field structure shows
        lo, hi = np.percentile(finite, [0.5, 90]) if finite.size else (0, 1)
        im = ax.imshow(image, origin="lower", cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("iris_reduce: dq_init + dark + flat with references chosen by crdsmini")
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    outdir = Path(argv[0] if argv else "demo_output")
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    root = bundled_root()
    context = bundled.CONTEXT
    env = dict(os.environ, CRDS_PATH=str(root), CRDS_CONTEXT=context)

    _say(f"== 1. bundled context {context} in {root}")
    missing = bundled.missing_references(root)
    if missing:
        _say(f"  generating {len(missing)} missing reference files (scripts/"
             "make_bundled_references.py) ...")
        bundled.make_references(root, only_missing=True)
    else:
        _say(f"  all {len(bundled.REFERENCES)} reference files present")

    _say("\n== 2. synthesize a raw IRIS frame")
    header = bundled.demo_header(**DEMO_FRAME)
    raw_path = outdir / "iris_raw_iris1_h.fits"
    resolver = CrdsResolver(context, root)
    try:
        chosen = resolver.resolve(header, ["MASK", "DARK", "FLAT"], raw_path)
    except IrisReduceError as exc:
        _say(f"  cannot choose references for the demo frame: {exc}")
        return 1
    bundled.demo_science(raw_path, header, {k: v.path for k, v in chosen.items()})
    _say(f"  {raw_path}: " + ", ".join(f"{k}={header[k]}" for k in
                                       ("DETECTOR", "FILTER", "PUPIL", "SUBARRAY", "DATE-OBS",
                                        "TIME-OBS")))

    _say("\n== 3. which references? (crdsmini bestrefs --explain)")
    done = _run(_command("crdsmini", "crdsmini.cli") + ["bestrefs", "--explain", str(raw_path)],
                env)
    if done is not None and done.returncode == 0:
        _say(_indent(done.stdout or done.stderr))
    else:
        detail = "" if done is None else _indent((done.stderr or done.stdout), 8)
        _say("  note: `crdsmini bestrefs --explain` did not succeed; continuing without it"
             + (f"\n{detail}" if detail else ""))

    _say("\n== 4. calibrate (iris-reduce reduce)")
    done = _run(_command("iris-reduce", "iris_reduce") +
                ["reduce", str(raw_path), "-d", str(outdir), "--context", context,
                 "--crds-path", str(root), "--overwrite"], env)
    if done is None or done.returncode != 0:
        _say(_indent(done.stderr if done is not None else "iris-reduce could not be started"))
        return 1
    calibrated = Path(done.stdout.strip().splitlines()[-1])
    _say(f"  wrote {calibrated}")

    _say("\n== 5. records in the calibrated header")
    with fits.open(calibrated) as hdul:
        primary = hdul[0].header
        for card in primary.cards:
            if card.keyword.startswith(("S_", "R_")) or card.keyword in (
                    "CRDS_CTX", "CRDS_VER", "CAL_VER"):
                _say(f"  {card.image.rstrip()}")
        dq = np.array(hdul["DQ"].data)
    _say(f"  DQ: {np.count_nonzero(dq)} of {dq.size} pixels flagged")

    _say("\n  the same rules for other frames:")
    for frame in OTHER_FRAMES:
        other = bundled.demo_header(**frame)
        try:
            picked = resolver.resolve(other, ["MASK", "DARK", "FLAT"], "other frame")
            names = "  ".join(f"{k}={v.file}" for k, v in picked.items())
        except IrisReduceError as exc:
            names = f"error: {exc.reason}"
        _say(f"  {frame['detector']} {frame['band']:<2} {frame['date']}: {names}")

    _say("\n== 6. preview")
    png = outdir / "iris_demo_preview.png"
    if _preview(raw_path, calibrated, png):
        _say(f"  wrote {png}")
    _say(f"\ndone in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
