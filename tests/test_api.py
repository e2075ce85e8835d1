"""The drop-in API: crdsmini.getrecommendations / getreferences and crdsmini.stpipe_client."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from crdsmini import api, stpipe_client
from crdsmini.errors import (ConfigurationError, InvalidValueError, MissingKeyError,
                             ReferenceNotFoundError, UnknownInstrumentError)
from test_bestrefs_cli import cache  # noqa: F401 (fixture)

PARAMS = {
    "meta.instrument.name": "IRIS", "meta.instrument.detector": "IRIS1",
    "meta.instrument.filter": "K", "meta.instrument.pupil": "CLEAR",
    "meta.subarray.name": "FULL", "meta.observation.date": "2019-03-01",
    "meta.observation.time": "12:00:00",
}


def test_signatures_match_crds():
    for function in (api.getrecommendations, api.getreferences):
        names = list(inspect.signature(function).parameters)
        assert names == ["parameters", "reftypes", "context", "ignore_cache", "observatory", "fast"]
    for name, expected in {
        "get_multiple_reference_paths": ["parameters", "reference_file_types", "observatory"],
        "get_reference_file": ["parameters", "reference_file_type", "observatory"],
        "check_reference_open": ["refpath"],
        "get_context_used": ["observatory"],
        "reference_uri_to_cache_path": ["reference_uri", "observatory"],
    }.items():
        assert list(inspect.signature(getattr(stpipe_client, name)).parameters) == expected


def test_getrecommendations_crds_values(cache):
    found = api.getrecommendations(PARAMS)
    assert found == {"dark": "tmt_iris_dark_0001.fits", "dflat": "NOT FOUND n/a",
                     "flat": "tmt_iris_flat_k_0002.fits", "mask": "tmt_iris_mask_0001.fits",
                     "nonlincoeff": "tmt_iris_nonlincoeff_0001.fits"}


def test_getrecommendations_reftypes_context_and_failures(cache):
    found = api.getrecommendations({**PARAMS, "meta.observation.date": "2021-01-01"},
                                   reftypes=["FLAT"], context="tmt_0002.pmap")
    assert found == {"flat": "tmt_iris_flat_k_0003.fits"}
    bad = api.getrecommendations({**PARAMS, "meta.subarray.name": "WEIRD"}, reftypes=["dark"])
    assert bad == {"dark": "NOT FOUND  parameter='META.SUBARRAY.NAME' value='WEIRD' is not in "
                           "['FULL', 'SUB64']"}


def test_upper_case_fits_style_parameters_and_conditioning(cache):
    params = {key.upper(): value.lower() for key, value in PARAMS.items()}
    assert api.getrecommendations(params, reftypes=["flat"]) == {"flat": "tmt_iris_flat_k_0002.fits"}


def test_whole_call_errors_raise(cache):
    with pytest.raises(MissingKeyError):
        api.getrecommendations({k: v for k, v in PARAMS.items() if k != "meta.instrument.name"})
    with pytest.raises(UnknownInstrumentError):
        api.getrecommendations({**PARAMS, "meta.instrument.name": "NIRCAM"})


def test_getreferences_returns_local_paths(cache):
    paths = api.getreferences(PARAMS, reftypes=["flat", "dark", "dflat"])
    assert paths == {
        "flat": str(cache / "references/tmt/iris/tmt_iris_flat_k_0002.fits"),
        "dark": str(cache / "references/tmt/iris/tmt_iris_dark_0001.fits"),
        "dflat": "NOT FOUND n/a",
    }


def test_getreferences_missing_file_names_the_expected_path(cache):
    with pytest.raises(ReferenceNotFoundError) as info:
        api.getreferences({**PARAMS, "meta.instrument.filter": "H"}, reftypes=["flat"])
    assert str(cache / "references/tmt/iris/tmt_iris_flat_h_0001.fits") in str(info.value)


def test_getreferences_lookup_failure_raises_typed_error(cache):
    with pytest.raises(InvalidValueError, match="Error determining best reference for 'dark'"):
        api.getreferences({**PARAMS, "meta.subarray.name": "WEIRD"})


def test_context_by_path_outside_any_configuration(cache, monkeypatch):
    monkeypatch.delenv("CRDS_PATH")
    monkeypatch.delenv("CRDS_CONTEXT")
    context = cache / "mappings/tmt/tmt_0001.pmap"
    paths = api.getreferences(PARAMS, reftypes=["flat"], context=str(context))
    assert paths["flat"] == str((cache / "references/tmt/iris/tmt_iris_flat_k_0002.fits").resolve())


def test_observatory_mismatch_is_refused(cache):
    with pytest.raises(ConfigurationError):
        api.getrecommendations(PARAMS, context="tmt_0001.pmap", observatory="jwst")


def test_session_reuses_one_context(cache):
    session = api.open_context()
    assert session.name == "tmt_0001.pmap" and session.observatory == "tmt"
    assert session.getrecommendations(PARAMS, "flat") == {"flat": "tmt_iris_flat_k_0002.fits"}
    assert Path(session.getreferences(PARAMS, ["mask"])["mask"]).is_file()


# -- stpipe_client ----------------------------------------------------------------------------

def test_stpipe_reference_paths(cache):
    paths = stpipe_client.get_multiple_reference_paths(PARAMS, ["flat", "dflat"], "tmt")
    assert paths == {"flat": str(cache / "references/tmt/iris/tmt_iris_flat_k_0002.fits"),
                     "dflat": "N/A"}
    assert stpipe_client.get_reference_file(PARAMS, "dflat", "tmt") == "N/A"
    path = stpipe_client.get_reference_file(PARAMS, "mask", "tmt")
    assert stpipe_client.check_reference_open(path) == path
    assert stpipe_client.check_reference_open("N/A") == "N/A"
    with pytest.raises(ReferenceNotFoundError):
        stpipe_client.check_reference_open(str(cache / "nope.fits"))
    with pytest.raises(TypeError):
        stpipe_client.get_multiple_reference_paths([("a", 1)], ["flat"], "tmt")


def test_stpipe_context_and_uri(cache, monkeypatch):
    assert stpipe_client.get_context_used("tmt") == "tmt_0001.pmap"
    monkeypatch.setenv("CRDS_CONTEXT", "tmt_0002.pmap")
    assert stpipe_client.get_context_used("tmt") == "tmt_0002.pmap"
    path = stpipe_client.reference_uri_to_cache_path("crds://tmt_iris_mask_0001.fits", "tmt")
    assert path == str(cache / "references/tmt/iris/tmt_iris_mask_0001.fits")
    with pytest.raises(ValueError):
        stpipe_client.reference_uri_to_cache_path("tmt_iris_mask_0001.fits", "tmt")


def test_package_exports_when_present():
    import crdsmini

    if not hasattr(crdsmini, "getreferences"):
        pytest.skip("crdsmini/__init__.py does not export the API yet")
    assert crdsmini.getreferences is api.getreferences
    assert crdsmini.getrecommendations is api.getrecommendations
