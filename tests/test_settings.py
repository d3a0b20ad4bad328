"""Settings: parsed once, every bad value reported with its name."""

from __future__ import annotations

import re

import pytest

from worker.settings import Settings, SettingsError


def load(**env: str) -> Settings:
    return Settings.load(env.get)


def test_defaults():
    settings = load()
    assert (settings.impressions_mode, settings.sync_subrequests, settings.cache_seconds) == (
        "OPTIMIZED",
        50,
        5.0,
    )
    assert settings.flag_sets == () and settings.eval_token == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLAGEDGE_SYNC_SUBREQUESTS": "lots"}, "'lots' is not a whole number"),
        ({"FLAGEDGE_SYNC_SUBREQUESTS": "4"}, "below the least useful value, 5"),
        ({"FLAGEDGE_CACHE_SECONDS": "soon"}, "'soon' is not a number"),
        ({"FLAGEDGE_CACHE_SECONDS": "inf"}, "'inf' is not a number"),
        ({"FLAGEDGE_IMPRESSIONS_MODE": "LOUD"}, "not one of OPTIMIZED, DEBUG, NONE"),
        ({"FLAGEDGE_FLAG_SETS": "ok,Not Ok"}, "invalid flag set name"),
        ({"FLAGEDGE_CORS_ORIGINS": "app.example"}, "an origin is scheme://host[:port] or *"),
        ({"FLAGEDGE_EVAL_TOKEN": "   "}, "FLAGEDGE_EVAL_TOKEN: is only whitespace"),
        ({"SPLIT_SDK_URL": "sdk.split.io"}, "not an http(s) URL"),
        ({"FLAGEDGE_FALLBACK_TREATMENTS": '{"global": "bad one"}'}, "not a valid treatment name"),
        ({"FLAGEDGE_FALLBACK_TREATMENTS": "{nope"}, "FLAGEDGE_FALLBACK_TREATMENTS"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(env, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        load(**env)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as error:
        load(FLAGEDGE_SYNC_SECONDS="x", FLAGEDGE_IMPRESSIONS_MODE="y")
    assert "FLAGEDGE_SYNC_SECONDS" in str(error.value) and "FLAGEDGE_IMPRESSIONS_MODE" in str(
        error.value
    )


def test_tokens_are_trimmed_and_repr_masks_secrets():
    settings = load(FLAGEDGE_EVAL_TOKEN="s3cret\n", SPLIT_SDK_KEY="key")
    assert settings.eval_token == "s3cret"
    assert "s3cret" not in repr(settings) and "key'" not in repr(settings)
    assert "eval_token='***'" in repr(settings)


def test_flag_sets_and_origins_are_normalized():
    settings = load(
        FLAGEDGE_FLAG_SETS=" Web ,ios,web", FLAGEDGE_CORS_ORIGINS="https://a.example, *"
    )
    assert settings.flag_sets == ("ios", "web")
    assert settings.cors_origins == ("https://a.example", "*")
