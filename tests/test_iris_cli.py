"""``iris-reduce`` end to end (click runner and the installed console script), the Python
API, and the input/output details of spec 3 (DATA accepted, passthrough HDUs, scaled inputs,
absent ERR/DQ, atomic writes)."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import iris_reduce
from iris_reduce import CombineConfig, ReduceConfig, SkyConfig, make_dark, make_flat, make_sky
from iris_reduce import reduce_file, reduce_files
from iris_reduce.synth import SYNTH_NAMES, science_header, write_synthetic
from iris_reduce.testing import (  # noqa: F401  (fixtures)
    Case,
    case,
    engine,
    engine_available,
    read_output,
    synth_data,
    synthetic_resolver,
)

needs_engine = pytest.mark.skipif(not engine_available(),
                                  reason="crdsmini engine not yet available")
SKIES = [f"sky_{k:02d}.fits" for k in range(1, 6)]


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


# --------------------------------------------------------------------------- commands

def test_version(case: Case) -> None:
    result = ok(case.run("--version"))
    assert result.stdout.strip() == f"iris-reduce {iris_reduce.__version__}"


def test_help_lists_commands(case: Case) -> None:
    result = ok(case.run("--help"))
    for command in ("reduce", "make-sky", "make-dark", "make-flat", "synth"):
        assert command in result.stdout


def test_synth_command(case: Case, tmp_path: Path) -> None:
    result = ok(case.run("synth", tmp_path / "s", "--size", "48"))
    assert "wrote" in result.stdout
    for name in SYNTH_NAMES:
        assert (tmp_path / "s" / name).is_file(), name
    with fits.open(tmp_path / "s" / "sci_full.fits") as hdul:
        assert hdul["SCI"].data.shape == (48, 48)
        assert np.isnan(hdul["SCI"].data[8, 8])
        assert hdul["SCI"].header["BUNIT"] == "DN"
    for name in ("tmt_9001.pmap", "tmt_9002.pmap", "tmt_iris_9001.imap", "tmt_iris_9002.imap",
                 "tmt_iris_mask_9001.rmap", "tmt_iris_dark_9001.rmap", "tmt_iris_flat_9001.rmap",
                 "tmt_iris_nonlin_9001.rmap"):
        assert (tmp_path / "s" / "crds" / "mappings" / "tmt" / name).is_file()
    mode = tmp_path / "s" / "crds" / "config" / "tmt" / "ref_cache_subdir_mode"
    assert mode.read_text().strip() == "instrument"


def test_synth_is_deterministic(tmp_path: Path) -> None:
    names = ["sci_full.fits", "sky_03.fits", "crds/references/tmt/iris/tmt_iris_synth_flat_a.fits"]
    a = write_synthetic(tmp_path / "a", names=names)
    b = write_synthetic(tmp_path / "b", names=names)
    for name in names:
        with fits.open(a[name]) as x, fits.open(b[name]) as y:
            for hx, hy in zip(x, y):
                assert np.array_equal(hx.data, hy.data, equal_nan=True) if hx.data is not None \
                    else hy.data is None
    with pytest.raises(ValueError, match="unknown synthetic"):
        write_synthetic(tmp_path / "c", names=["nope.fits"])


def test_synthetic_cache_checksums(synth_data: Path) -> None:
    from crdsmini.checksum import read_mapping_text, verify_checksum
    for path in sorted((synth_data / "crds" / "mappings" / "tmt").iterdir()):
        verify_checksum(read_mapping_text(path), path.name)


def test_reduce_output_dir_suffix_and_stdout(case: Case) -> None:
    result = ok(case.run("reduce", case.path("sci_full.fits"), case.path("sci_late.fits"),
                         "--suffix", "red"))
    assert case.written() == ["sci_full_red.fits", "sci_late_red.fits"]
    assert result.stdout.split() == [str(case.output("sci_full_red.fits")),
                                     str(case.output("sci_late_red.fits"))]


def test_reduce_skip_and_steps(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), "--skip", "flat"))
    out = read_output(case.output("sci_full_cal.fits"))
    assert float(out["SCI"][0, 0]) == 1000.0
    assert out.header["S_FLAT"] == "SKIPPED" and "R_FLAT" not in out.header
    assert out.header["S_DARK"] == "COMPLETE"


def test_reduce_only_overrides_needs_no_context(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), "--steps", "dark,flat",
                "--override-dark", case.path("dark_ramp.fits"), "--override-flat",
                case.path("flat_err.fits"), "-d", case.out, "--crds-path", case.out / "nowhere",
                default=False))
    out = read_output(case.output("sci_full_cal.fits"))
    assert "CRDS_CTX" not in out.header            # crdsmini chose nothing
    assert out.header["R_DARK"] == "dark_ramp.fits"
    assert float(out["SCI"][0, 1]) == (1100.0 - 1.0) / 2


def test_sky_list_and_dry_run_with_sky(case: Case, tmp_path: Path) -> None:
    listing = tmp_path / "skies.txt"
    listing.write_text("# sky frames\n" + "".join(f"{case.path(n)}\n\n" for n in SKIES))
    result = ok(case.run("reduce", case.path("sci_full.fits"), "--sky-list", listing,
                         "--dry-run"))
    plan = json.loads(result.stdout)["files"][0]
    assert plan["steps"] == ["dq_init", "dark", "flat", "sky"]
    assert case.written() == []
    ok(case.run("reduce", case.path("sci_full.fits"), "--sky-list", listing))
    assert read_output(case.output("sci_full_cal.fits")).header["SKYNFRM"] == 5


def test_one_sky_for_many_science_files(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), case.path("sci_late.fits"),
                *[a for n in SKIES for a in ("--sky", case.path(n))]))
    late = read_output(case.output("sci_late_cal.fits"))
    assert float(late["SCI"][0, 0]) == 250.0 - 40.0      # the sky is calibrated with flat_a


def test_make_sky_options(case: Case) -> None:
    out = case.out / "sky.fits"
    ok(case.run("make-sky", *[case.path(n) for n in SKIES], "-o", out, "--clip-stat", "mad",
                "--sigma", "4", "--maxiters", "2"))
    product = read_output(out)
    assert product.header["SKYCSTAT"] == "mad"
    assert product.header["SKYSIG"] == 4.0 and product.header["SKYITER"] == 2
    assert product.header["REFTYPE"] == "SKY" and product.header["SKYNFRM"] == 5
    assert product.header["DATE-OBS"] == "2019-05-01"
    assert set(product.arrays) == {"SCI", "ERR", "DQ", "NUSED"}


def test_make_dark_product_options(case: Case) -> None:
    out = case.out / "dark.fits"
    ok(case.run("make-dark", *[case.path(f"dark_{k:02d}.fits") for k in range(1, 6)], "-o", out,
                "--useafter", "2020-02-02T00:00:00", "--pedigree", "INFLIGHT 2019-05-01",
                "--author", "someone", "--description", "test dark"))
    header = read_output(out).header
    assert header["USEAFTER"] == "2020-02-02T00:00:00"
    assert header["PEDIGREE"] == "INFLIGHT 2019-05-01"
    assert header["AUTHOR"] == "someone" and header["DESCRIP"] == "test dark"
    assert header["SUBARRAY"] == "FULL" and header["TELESCOP"] == "TMT"
    assert sum(1 for h in header["HISTORY"] if str(h).startswith("input ")) == 5


def test_made_references_are_usable(case: Case) -> None:
    dark = case.out / "made_dark.fits"
    flat = case.out / "made_flat.fits"
    ok(case.run("make-dark", *[case.path(f"dark_{k:02d}.fits") for k in range(1, 6)], "-o", dark))
    ok(case.run("make-flat", *[case.path(f"flatlamp_{k:02d}.fits") for k in (1, 2, 3)], "-o",
                flat))
    ok(case.run("reduce", case.path("sci_full.fits"), "--override-dark", dark,
                "--override-flat", flat))
    out = read_output(case.output("sci_full_cal.fits"))
    assert float(out["SCI"][5, 5]) == 1000.0        # (1100 - 100) / 1
    assert float(out["SCI"][0, 0]) == 500.0         # flat 2 there


def test_make_flat_mean(case: Case) -> None:
    out = case.out / "flat.fits"
    ok(case.run("make-flat", *[case.path(f"flatlamp_{k:02d}.fits") for k in (1, 2, 3)], "-o",
                out, "--normalize-method", "mean"))
    header = read_output(out).header
    assert header["NORMMETH"] == "mean"
    assert header["NORMFACT"] > 3000.0


@needs_engine
def test_console_script_end_to_end(synth_data: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("iris-reduce")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "iris_reduce"]
    env = dict(os.environ, CRDS_PATH=str(synth_data / "crds"), CRDS_CONTEXT="tmt_9001.pmap")
    done = subprocess.run(argv + ["reduce", str(synth_data / "sci_late.fits"), "-d",
                                  str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = read_output(tmp_path / "sci_late_cal.fits")
    assert out.header["R_FLAT"] == "crds://tmt_iris_synth_flat_b.fits"
    assert out.header["CRDS_CTX"] == "tmt_9001.pmap"
    done = subprocess.run(argv + ["reduce", str(synth_data / "sci_nofilter.fits"), "-d",
                                  str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("iris-reduce: error: ") and "FILTER" in done.stderr


@needs_engine
def test_cache_without_context_is_an_error(synth_data: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iris_reduce.cli import main
    env = {"CRDS_PATH": str(synth_data / "crds"), "CRDS_CONTEXT": ""}
    result = CliRunner().invoke(main, ["reduce", str(synth_data / "sci_full.fits"), "-d",
                                       str(tmp_path)], env=env)
    assert result.exit_code == 1
    assert "CRDS_CONTEXT" in result.stderr and "MASK" in result.stderr


# --------------------------------------------------------------------------- Python API

def test_api_reduce_file(synth_data: Path, tmp_path: Path) -> None:
    resolver = synthetic_resolver(synth_data / "crds")
    out = reduce_file(synth_data / "sci_full.fits", tmp_path / "x.fits", ReduceConfig(), resolver)
    assert out == tmp_path / "x.fits"
    assert float(read_output(out)["SCI"][0, 0]) == 500.0
    assert resolver.lookups[0]["META.INSTRUMENT.DETECTOR"] == "IRIS1"
    with pytest.raises(iris_reduce.IrisReduceError) as info:
        reduce_file(synth_data / "sci_nofilter.fits", tmp_path / "y.fits", ReduceConfig(),
                    resolver)
    assert info.value.keyword == "FILTER"
    assert "sci_nofilter.fits" in str(info.value)


def test_api_reduce_files_results(synth_data: Path, tmp_path: Path) -> None:
    resolver = synthetic_resolver(synth_data / "crds")
    results = reduce_files([synth_data / "sci_nofilter.fits", synth_data / "sci_full.fits"],
                           tmp_path, ReduceConfig(), resolver)
    assert [r.ok for r in results] == [False, True]
    assert results[1].output == tmp_path / "sci_full_cal.fits"
    results = reduce_files([synth_data / "sci_nofilter.fits", synth_data / "sci_full.fits"],
                           tmp_path / "ff", ReduceConfig(fail_fast=True), resolver)
    assert len(results) == 1


def test_api_make_functions(synth_data: Path, tmp_path: Path) -> None:
    resolver = synthetic_resolver(synth_data / "crds")
    skies = [synth_data / n for n in SKIES]
    config = ReduceConfig(combine=CombineConfig(stat="err"))
    sky = make_sky(skies, tmp_path / "sky.fits", config, resolver)
    assert float(read_output(sky)["SCI"][10, 10]) == 40.0
    dark = make_dark([synth_data / f"dark_{k:02d}.fits" for k in range(1, 6)],
                     tmp_path / "dark.fits", config, resolver)
    assert read_output(dark).header["CMBCSTAT"] == "err"
    flat = make_flat([synth_data / f"flatlamp_{k:02d}.fits" for k in (1, 2, 3)],
                     tmp_path / "flat.fits", config, resolver)
    assert read_output(flat).header["NORMFACT"] == 3000.0


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ReduceConfig(steps=("dq_init", "bias"))
    with pytest.raises(ValueError, match="mutually exclusive"):
        SkyConfig(frames=(Path("a"),), product=Path("b"))
    with pytest.raises(ValueError):
        ReduceConfig(block_rows=0)
    with pytest.raises(ValueError):
        CombineConfig(sigma=0)
    config = ReduceConfig(steps=("flat", "dq_init", "normalize"), skip=("normalize",))
    assert config.selected_steps() == ("dq_init", "flat")
    assert ReduceConfig(sky=SkyConfig(product=Path("s.fits"))).selected_steps() == \
        ("dq_init", "dark", "flat", "sky")
    with pytest.raises(ValueError, match="not available"):
        ReduceConfig(steps=("sky",), sky=SkyConfig(product=Path("p"))).selected_steps(
            ("dq_init",), ("dq_init", "nonlin"))


# --------------------------------------------------------------------------- spec 3 details

def test_data_extension_passthrough_and_missing_err(synth_data: Path, tmp_path: Path) -> None:
    n = 64
    sci = fits.ImageHDU(np.full((n, n), 1100.0, np.float32), name="DATA")
    sci.header["BUNIT"] = "DN"
    table = fits.BinTableHDU.from_columns([fits.Column(name="A", format="J", array=[1, 2, 3])],
                                          name="ASDF")
    extra = fits.ImageHDU(np.arange(6, dtype=np.int16).reshape(2, 3), name="WCSEXTRA")
    extra.header["BZERO"] = 10
    path = tmp_path / "liger.fits"
    fits.HDUList([fits.PrimaryHDU(header=science_header()), table, sci, extra]).writeto(path)
    out = reduce_file(path, tmp_path / "liger_cal.fits", ReduceConfig(),
                      synthetic_resolver(synth_data / "crds"))
    with fits.open(out) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "ERR", "DQ", "ASDF", "WCSEXTRA"]
        assert hdul["SCI"].header["BUNIT"] == "DN"
        assert hdul["SCI"].data.dtype == np.dtype(">f4")
        assert float(hdul["ERR"].data[0, 0]) == 2.0           # sqrt(0 + 4^2) / 2
        assert hdul["DQ"].header["BITPIX"] == 32 and hdul["DQ"].header["BZERO"] == 2**31
        assert list(hdul["ASDF"].data["A"]) == [1, 2, 3]
        assert hdul["WCSEXTRA"].data.tolist() == (np.arange(6).reshape(2, 3) + 10).tolist()
        assert any("ERR extension absent" in str(h) for h in hdul[0].header["HISTORY"])


def test_scaled_integer_science_and_uint16_dq(synth_data: Path, tmp_path: Path) -> None:
    n = 64
    raw = np.full((n, n), 550, np.int16)
    sci = fits.ImageHDU(raw, name="SCI")
    sci.header["BSCALE"] = 2.0
    sci.header["BZERO"] = 0.0
    dq = fits.ImageHDU(np.full((n, n), 4, np.uint16), name="DQ")
    path = tmp_path / "scaled.fits"
    fits.HDUList([fits.PrimaryHDU(header=science_header()), sci, dq]).writeto(path)
    out = reduce_file(path, tmp_path / "scaled_cal.fits", ReduceConfig(),
                      synthetic_resolver(synth_data / "crds"))
    result = read_output(out)
    assert float(result["SCI"][0, 0]) == 500.0
    assert int(result["DQ"][0, 0]) == 4
    assert int(result["DQ"][1, 1]) == 4 | 1025


def test_gzipped_input(synth_data: Path, tmp_path: Path) -> None:
    target = tmp_path / "sci_full.fits.gz"
    target.write_bytes(gzip.compress((synth_data / "sci_full.fits").read_bytes()))
    out = reduce_file(target, None, ReduceConfig(output_dir=tmp_path / "o"),
                      synthetic_resolver(synth_data / "crds"))
    assert out.name == "sci_full_cal.fits"
    assert float(read_output(out)["SCI"][0, 0]) == 500.0


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path, monkeypatch) -> None:
    from iris_reduce import fitsio
    calls = []

    def broken(self, *args, **kwargs):
        calls.append(1)
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", broken)
    with pytest.raises(OSError, match="disk full"):
        fitsio.write_fits_atomic(tmp_path / "x.fits", fits.Header(),
                                 [fitsio.ImageSpec("SCI", np.zeros((4, 4), np.float32))])
    assert calls and list(tmp_path.iterdir()) == []


def test_unsigned_arrays_restored_after_write(tmp_path: Path) -> None:
    from iris_reduce import fitsio
    dq = np.array([[0, 1, 2**31, 2**32 - 1]], np.uint32)
    nused = np.array([[0, 1, 65535, 7]], np.uint16)
    fitsio.write_fits_atomic(tmp_path / "u.fits", fits.Header(),
                             [fitsio.ImageSpec("DQ", dq), fitsio.ImageSpec("NUSED", nused)])
    assert dq.tolist() == [[0, 1, 2**31, 2**32 - 1]] and nused.tolist() == [[0, 1, 65535, 7]]
    with fits.open(tmp_path / "u.fits") as hdul:
        assert hdul["DQ"].data.tolist() == dq.tolist()
        assert hdul["NUSED"].data.tolist() == nused.tolist()
    assert oct((tmp_path / "u.fits").stat().st_mode & 0o777) != "0o600"


def test_nonlin_successor_layout_and_data_alias(synth_data: Path, tmp_path: Path) -> None:
    """COEFFS without NLFORM is (ny, nx, ncoeff) POLY; a reference may use DATA for SCI."""
    from iris_reduce.synth import write_reference
    cube = np.zeros((64, 64, 3), np.float32)
    cube[..., 1] = 1.0
    cube[..., 2] = 1e-5
    nonlin = write_reference(tmp_path / "nonlin_liger.fits", "NONLINCOEFF",
                             extra=[fits.ImageHDU(cube, name="COEFFS")])
    dark = tmp_path / "dark_data.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.full((64, 64), 10.0, np.float32),
                                                   name="DATA")]).writeto(dark)
    config = ReduceConfig(steps=("nonlin", "dark"), override_nonlin=nonlin, override_dark=dark)
    out = read_output(reduce_file(synth_data / "sci_dn.fits", tmp_path / "o.fits", config))
    assert out.header["NLFORM"] == "POLY"
    assert float(out["SCI"][0, 0]) == pytest.approx(1000.0)         # 1010 - 10
    assert float(out["ERR"][0, 0]) == pytest.approx(3.06, rel=1e-6)


def test_sci_wins_over_data_and_extnames_are_case_insensitive(synth_data: Path,
                                                             tmp_path: Path) -> None:
    data = fits.ImageHDU(np.full((64, 64), 9.0, np.float32), name="DATA")
    sci = fits.ImageHDU(np.full((64, 64), 1100.0, np.float32))
    sci.header["EXTNAME"] = "sci"
    path = tmp_path / "both.fits"
    fits.HDUList([fits.PrimaryHDU(header=science_header()), data, sci]).writeto(path)
    out = read_output(reduce_file(path, tmp_path / "both_cal.fits", ReduceConfig(),
                                  synthetic_resolver(synth_data / "crds")))
    assert float(out["SCI"][0, 0]) == 500.0
    assert "DATA" in out.arrays                       # the unused DATA is passed through


def test_rerun_keeps_complete_and_records_na(synth_data: Path, tmp_path: Path) -> None:
    """Spec 8: a step not run now keeps the input's status; N/A steps record R_* = N/A."""
    resolver = synthetic_resolver(synth_data / "crds", "tmt_9002.pmap")
    first = reduce_file(synth_data / "sci_full.fits", tmp_path / "a.fits",
                        ReduceConfig(steps=("dq_init",)), resolver)
    second = reduce_file(first, tmp_path / "b.fits", ReduceConfig(steps=("dark", "flat")),
                         resolver)
    header = read_output(second).header
    assert header["S_DQINIT"] == "COMPLETE"           # kept from the input
    assert header["S_DARK"] == "SKIPPED" and header["R_DARK"] == "N/A"
    assert header["S_FLAT"] == "COMPLETE"
    assert header["R_MASK"] == "crds://tmt_iris_synth_mask.fits"
