"""Cache layout and name resolution (writing-and-tools §5.1-§5.3)."""
from __future__ import annotations

from pathlib import Path

import pytest

from crdsmini.cache import (Cache, bundled_candidates, bundled_root, infer_cache_root,
                            observatory_of, open_cache)
from crdsmini.config import load_config
from crdsmini.errors import ConfigurationError, ReferenceNotFoundError


def make_cache(root: Path, *, mode: str | None = "instrument", server_context: str | None = None,
               pmaps=("tmt_0001.pmap",)) -> Path:
    (root / "mappings" / "tmt").mkdir(parents=True)
    for name in pmaps:
        (root / "mappings" / "tmt" / name).write_text("header = {}\n")
    (root / "references" / "tmt" / "iris").mkdir(parents=True)
    (root / "config" / "tmt").mkdir(parents=True)
    if mode is not None:
        (root / "config" / "tmt" / "ref_cache_subdir_mode").write_text(mode + "\n")
    if server_context is not None:
        (root / "config" / "tmt" / "server_config").write_text(
            repr({"operational_context": server_context, "bad_files_list": []}))
    return root


@pytest.mark.parametrize("name, obs", [
    ("tmt_iris_flat_0004.rmap", "tmt"), ("hst.pmap", "hst"), ("jwst_0001.pmap", "jwst"),
    ("/a/b/HST_acs.imap", "hst"),
])
def test_observatory_is_the_name_prefix(name, obs):
    assert observatory_of(name) == obs


# -- directories per variable (spec §5.2 table) ---------------------------------------------------

@pytest.mark.parametrize("env, mappings, references, config", [
    ({"CRDS_PATH": "/c"}, "/c/mappings/tmt", "/c/references/tmt", "/c/config/tmt"),
    ({"CRDS_PATH_SINGLE": "/cs"}, "/cs/mappings", "/cs/references", "/cs/config"),
    ({"CRDS_PATH": "/c", "CRDS_MAPPATH": "/m"}, "/m/tmt", "/c/references/tmt", "/c/config/tmt"),
    ({"CRDS_PATH": "/c", "CRDS_MAPPATH_SINGLE": "/ms", "CRDS_MAPPATH": "/m"},
     "/ms", "/c/references/tmt", "/c/config/tmt"),
    ({"CRDS_PATH": "/c", "CRDS_REFPATH": "/r"}, "/c/mappings/tmt", "/r/tmt", "/c/config/tmt"),
    ({"CRDS_PATH": "/c", "CRDS_REFPATH_SINGLE": "/rs", "CRDS_REFPATH": "/r"},
     "/c/mappings/tmt", "/rs", "/c/config/tmt"),
    ({"CRDS_PATH": "/c", "CRDS_CFGPATH": "/g"}, "/c/mappings/tmt", "/c/references/tmt", "/g/tmt"),
    ({"CRDS_PATH_SINGLE": "/cs", "CRDS_PATH": "/c"}, "/cs/mappings", "/cs/references", "/cs/config"),
    ({"CRDS_PATH": "/c/"}, "/c/mappings/tmt", "/c/references/tmt", "/c/config/tmt"),
    ({}, "/bundle/mappings/tmt", "/bundle/references/tmt", "/bundle/config/tmt"),
    ({"CRDS_MAPPATH": "/m"}, "/m/tmt", "/bundle/references/tmt", "/bundle/config/tmt"),
])
def test_component_directories(env, mappings, references, config):
    cache = Cache(load_config(env), Path("/bundle"))
    assert cache.mappings_dir("TMT") == Path(mappings)
    assert cache.references_root("tmt") == Path(references)
    assert cache.config_dir("tmt") == Path(config)


def test_unset_component_without_bundle_is_a_configuration_error():
    cache = Cache(load_config({}), None)
    with pytest.raises(ConfigurationError, match="CRDS_PATH"):
        cache.mappings_dir("tmt")


# -- reference layout ---------------------------------------------------------------------------

def test_instrument_mode_puts_references_under_the_instrument(tmp_path):
    root = make_cache(tmp_path, mode="instrument")
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    assert cache.subdir_mode("tmt") == "instrument"
    assert cache.reference_path("x.fits", "tmt", "IRIS") == root / "references/tmt/iris/x.fits"


def test_flat_mode(tmp_path):
    root = make_cache(tmp_path, mode="flat")
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    assert cache.reference_path("x.fits", "tmt", "iris") == root / "references/tmt/x.fits"


def test_missing_mode_file_is_guessed_without_writing(tmp_path):
    root = make_cache(tmp_path, mode=None)
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    assert cache.subdir_mode("tmt") == "instrument"
    for number in range(21):
        (root / "references" / "tmt" / f"f{number}.fits").write_text("")
    assert cache.subdir_mode("tmt") == "flat"
    assert not (root / "config" / "tmt" / "ref_cache_subdir_mode").exists()


def test_unknown_mode_is_a_configuration_error(tmp_path):
    root = make_cache(tmp_path, mode="sideways")
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    with pytest.raises(ConfigurationError, match="sideways"):
        cache.subdir_mode("tmt")


def test_locate_reference_finds_files_in_either_layout(tmp_path):
    root = make_cache(tmp_path, mode="instrument")
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    (root / "references/tmt/iris/a.fits").write_text("a")
    (root / "references/tmt/b.fits").write_text("b")
    assert cache.locate_reference("a.fits", "tmt", "iris") == root / "references/tmt/iris/a.fits"
    assert cache.locate_reference("a.fits", "tmt") == root / "references/tmt/iris/a.fits"
    assert cache.locate_reference("b.fits", "tmt", "iris") == root / "references/tmt/b.fits"


def test_missing_reference_names_the_expected_path(tmp_path):
    root = make_cache(tmp_path)
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    with pytest.raises(ReferenceNotFoundError) as info:
        cache.locate_reference("gone.fits", "tmt", "iris")
    assert str(root / "references/tmt/iris/gone.fits") in str(info.value)
    assert info.value.category == "missing-file"


# -- contexts -----------------------------------------------------------------------------------

def test_bare_context_names_resolve_in_the_mappings_dir(tmp_path):
    root = make_cache(tmp_path)
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    assert cache.context_path("tmt_0001.pmap") == root / "mappings/tmt/tmt_0001.pmap"


def test_context_paths_are_used_as_given(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "tmt_0009.pmap").write_text("")
    cache = Cache(load_config({}), None)
    assert cache.context_path(str(other / "tmt_0009.pmap")) == other / "tmt_0009.pmap"


def test_missing_context_is_a_configuration_error(tmp_path):
    root = make_cache(tmp_path)
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    with pytest.raises(ConfigurationError, match="tmt_0404.pmap"):
        cache.context_path("tmt_0404.pmap")


def test_context_precedence_explicit_env_server_config(tmp_path):
    root = make_cache(tmp_path, server_context="tmt_0002.pmap",
                      pmaps=("tmt_0001.pmap", "tmt_0002.pmap", "tmt_0003.pmap"))
    env = {"CRDS_PATH": str(root)}
    assert Cache(load_config(env), None).context_path().name == "tmt_0002.pmap"
    env["CRDS_CONTEXT"] = "tmt_0001.pmap"
    assert Cache(load_config(env), None).context_path().name == "tmt_0001.pmap"
    assert Cache(load_config(env), None).context_path("tmt_0003.pmap").name == "tmt_0003.pmap"
    assert Cache(load_config(env, context="tmt_0003.pmap"), None).context_path().name \
        == "tmt_0003.pmap"


def test_symbolic_operational_context_uses_server_config(tmp_path):
    root = make_cache(tmp_path, server_context="tmt_0001.pmap")
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    assert cache.context_path("tmt-operational").name == "tmt_0001.pmap"
    with pytest.raises(ConfigurationError, match="needs a CRDS server"):
        cache.context_path("tmt-edit")


def test_configured_cache_without_default_context_is_an_error(tmp_path):
    root = make_cache(tmp_path)
    cache = Cache(load_config({"CRDS_PATH": str(root)}), tmp_path / "unused")
    with pytest.raises(ConfigurationError, match="CRDS_CONTEXT"):
        cache.context_path()


def test_crds_context_must_be_a_pmap(tmp_path):
    root = make_cache(tmp_path)
    cache = Cache(load_config({"CRDS_PATH": str(root), "CRDS_CONTEXT": "tmt_iris_0001.imap"}), None)
    with pytest.raises(ConfigurationError, match="Only set CRDS_CONTEXT"):
        cache.context_path()


def test_bundled_default_is_the_newest_pmap(tmp_path):
    bundle = make_cache(tmp_path / "bundle", pmaps=("tmt_0002.pmap", "tmt_0010.pmap", "tmt.pmap"))
    cache = Cache(load_config({}), bundle)
    assert cache.default_context_name() == ("tmt_0010.pmap", "bundled default")
    assert cache.context_path() == bundle / "mappings/tmt/tmt_0010.pmap"


def test_bundled_server_config_wins_over_newest(tmp_path):
    bundle = make_cache(tmp_path / "bundle", pmaps=("tmt_0002.pmap", "tmt_0010.pmap"),
                        server_context="tmt_0002.pmap")
    assert Cache(load_config({}), bundle).context_path().name == "tmt_0002.pmap"


def test_unreadable_server_config(tmp_path):
    root = make_cache(tmp_path)
    (root / "config/tmt/server_config").write_text("operational_context = 'x'")
    cache = Cache(load_config({"CRDS_PATH": str(root)}), None)
    with pytest.raises(ConfigurationError, match="server_config"):
        cache.context_path()


def test_json_server_config_is_accepted(tmp_path):
    root = make_cache(tmp_path)
    (root / "config/tmt/server_config").write_text('{"operational_context": "tmt_0001.pmap", "x": true}')
    assert Cache(load_config({"CRDS_PATH": str(root)}), None).context_path().name == "tmt_0001.pmap"


# -- open_cache and the bundled root ----------------------------------------------------------------

def test_a_context_path_inside_a_cache_makes_that_cache_the_default(tmp_path):
    root = make_cache(tmp_path / "cache")
    context = root / "mappings/tmt/tmt_0001.pmap"
    assert infer_cache_root(context) == root.resolve()
    cache = open_cache(load_config({}), context=str(context), bundled=False)
    assert cache.references_root("tmt") == root.resolve() / "references/tmt"
    assert infer_cache_root(tmp_path / "x" / "tmt_0001.pmap") is None


def test_open_cache_uses_the_given_bundle(tmp_path):
    cache = open_cache(load_config({}), bundled=tmp_path)
    assert cache.default_root == tmp_path


def test_bundled_root_searches_candidates(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    bundle = make_cache(tmp_path / "bundle", pmaps=("tmt_0010.pmap",))
    assert bundled_root([empty, bundle]) == bundle
    with pytest.raises(ConfigurationError, match="not installed"):
        bundled_root([empty])


def test_bundled_candidates_start_with_the_checkout_then_the_data_dir():
    candidates = bundled_candidates()
    assert candidates[0] == Path(__file__).resolve().parent.parent
    assert any(str(p).endswith("share/crdsmini") for p in candidates)
