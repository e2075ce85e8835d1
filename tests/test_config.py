"""Configuration (writing-and-tools §5.2, §5.4): variables read at call time, expansion, precedence."""
from __future__ import annotations

from pathlib import Path

import pytest

from crdsmini.config import Config, expand_path_text, load_config, parse_bool
from crdsmini.errors import ConfigurationError


@pytest.mark.parametrize("text, expected", [
    ("True", True), ("true", True), ("TRUE", True), ("T", True), ("t", True), ("1", True),
    ("False", False), ("false", False), ("FALSE", False), ("F", False), ("f", False),
    ("0", False), (" 1 ", True),
])
def test_booleans_use_the_crds_vocabulary(text, expected):
    assert parse_bool("CRDS_X", text) is expected


@pytest.mark.parametrize("text", ["yes", "no", "on", "2", "Tru"])
def test_other_boolean_spellings_are_errors(text):
    with pytest.raises(ConfigurationError, match="Invalid value .* for boolean env var 'CRDS_X'") as info:
        parse_bool("CRDS_X", text)
    assert info.value.category == "configuration"


@pytest.mark.parametrize("text, expected", [
    ("~/cache", "/home/u/cache"),
    ("~", "/home/u"),
    ("$ROOT/cache", "/data/cache"),
    ("${ROOT}/cache/", "/data/cache"),
    ("$MISSING/cache", "$MISSING/cache"),
    ("/a/b///", "/a/b"),
    ("/", "/"),
    ("relative/dir", "relative/dir"),
])
def test_path_expansion(text, expected):
    assert expand_path_text(text, {"HOME": "/home/u", "ROOT": "/data"}) == expected


def test_nothing_configured_means_bundled_default():
    config = load_config({})
    assert config == Config()
    assert not config.has_cache
    assert config.context is None


def test_environment_is_read_when_called(monkeypatch, tmp_path):
    monkeypatch.setenv("CRDS_PATH", str(tmp_path))
    first = load_config()
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "other"))
    second = load_config()
    assert first.crds_path == tmp_path
    assert second.crds_path == tmp_path / "other"


def test_variables_are_parsed_and_expanded():
    env = {
        "HOME": "/home/u",
        "CRDS_PATH": "~/crds_cache/",
        "CRDS_MAPPATH": "$HOME/maps",
        "CRDS_REFPATH_SINGLE": "/refs",
        "CRDS_CONTEXT": "tmt_0001.pmap",
        "CRDS_IGNORE_MAPPING_CHECKSUM": "1",
        "CRDS_ALLOW_BAD_USEAFTER": "false",
        "CRDS_SERVER_URL": "https://crds-serverless-mode.stsci.edu",
    }
    config = load_config(env)
    assert config.crds_path == Path("/home/u/crds_cache")
    assert config.mappath == Path("/home/u/maps")
    assert config.refpath_single == Path("/refs")
    assert config.context == "tmt_0001.pmap"
    assert config.ignore_mapping_checksum is True
    assert config.allow_bad_useafter is False
    assert config.has_cache
    assert config.sources["crds_path"] == "CRDS_PATH"
    assert any("CRDS_CONTEXT" in line for line in config.describe())


def test_empty_values_count_as_unset():
    assert load_config({"CRDS_PATH": "", "CRDS_CONTEXT": "  "}) == Config()


def test_explicit_arguments_win_over_environment():
    env = {"CRDS_PATH": "/env", "CRDS_CONTEXT": "tmt_0001.pmap", "HOME": "/h"}
    config = load_config(env, crds_path="~/explicit", context="tmt_0002.pmap")
    assert config.crds_path == Path("/h/explicit")
    assert config.context == "tmt_0002.pmap"
    assert config.sources["context"] == "argument"


def test_explicit_none_falls_through_to_environment():
    config = load_config({"CRDS_CONTEXT": "tmt_0001.pmap"}, context=None)
    assert config.context == "tmt_0001.pmap"


def test_invalid_boolean_in_environment_names_the_variable():
    with pytest.raises(ConfigurationError, match="CRDS_ALLOW_BAD_PARKEY_VALUES"):
        load_config({"CRDS_ALLOW_BAD_PARKEY_VALUES": "maybe"})


def test_unknown_explicit_setting_is_refused():
    with pytest.raises(ConfigurationError, match="unknown configuration"):
        load_config({}, crds_pth="/x")


def test_config_is_immutable():
    config = load_config({})
    with pytest.raises(Exception):
        config.crds_path = Path("/x")  # type: ignore[misc]


@pytest.mark.parametrize("environ", [
    {},
    {"CRDS_IGNORE_MAPPING_CHECKSUM": "1", "CRDSMINI_PARSE_CACHE": "~/pc", "CRDSMINI_PARSE_CACHE_READONLY": "T"},
    {"CRDS_IGNORE_MAPPING_CHECKSUM": "false", "CRDSMINI_PARSE_CACHE": "  ", "HOME": "/h"},
    {"CRDSMINI_PARSE_CACHE": "$HOME/pc/", "HOME": "/h"},
])
def test_loading_settings_are_load_configs(environ):
    from crdsmini.config import loading_settings
    settings, config = loading_settings(environ), load_config(environ)
    assert settings == (config.ignore_mapping_checksum, config.parse_cache, config.parse_cache_read_only)


def test_loading_settings_refuse_a_bad_boolean_like_load_config():
    from crdsmini.config import loading_settings
    for read in (loading_settings, load_config):
        with pytest.raises(ConfigurationError):
            read({"CRDSMINI_PARSE_CACHE_READONLY": "maybe"})
