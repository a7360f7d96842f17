"""The pieces of a retraining run without a model: golden split, training data, gate, report, picture."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.db import session_scope
from bot.models import LabelledUtterance, utcnow
from nlp.retrain import (
    Evaluation,
    ReportInputs,
    RetrainConfig,
    RetrainData,
    build_report,
    build_training_data,
    confusion_png,
    format_report,
    gate,
    golden_texts,
    split_seeds,
)
from nlp.seed import is_golden, load_seed_utterances


def ev(version: str, gold: str, predicted: str, *, labels: str = "abc",
       n_golden: int | None = None) -> Evaluation:
    """An evaluation from one-letter intents: ``gold``/``predicted`` strings, one row per letter."""
    return Evaluation(version=version, labels=tuple(labels), gold=tuple(gold), predicted=tuple(predicted),
                      n_golden=len(gold) if n_golden is None else n_golden)


# --- the golden set -----------------------------------------------------------------------------------


def test_the_golden_set_is_a_fixed_seventh_of_the_seeds_and_never_trained_on() -> None:
    seeds = load_seed_utterances()
    golden = [ex for ex in seeds if is_golden(ex[0])]
    assert len(seeds) == 2223 and len(golden) == 308  # about one in seven, by the hash of the text alone
    train, held_out = split_seeds(RetrainConfig())
    assert held_out == golden and len(train) == len(seeds) - len(golden)
    assert not {t for t, _ in train} & {t for t, _ in held_out}
    assert {label for _, label in held_out} == {label for _, label in seeds}  # every intent is tested
    assert split_seeds(RetrainConfig()) == (train, held_out)  # the same every time
    en_train, en_golden = split_seeds(RetrainConfig(seed_languages=("en",), seeds_per_intent=3,
                                                    golden_per_intent=2))
    assert len(en_golden) == 20 and len(en_train) == 30 and set(en_golden) <= set(golden)


def test_training_data_joins_seeds_and_admin_labels(engine: Engine) -> None:
    config = RetrainConfig(seed_languages=("en",), seeds_per_intent=5, recent_days=30)
    seeds, golden = split_seeds(config)
    a_seed, a_golden = seeds[0], next(iter(golden_texts()))
    now = utcnow()
    rows = [("anyone hiring designers?", "job_post", 1), ("we are hiring a CTO", "find_member", 3),
            ("we are hiring a CTO", "job_post", 2),  # relabelled later: the newer label wins
            (a_seed[0], "feedback", 1),  # an admin label replaces the seed with the same text
            (a_golden, "thanks", 1),  # a golden text never trains
            ("an old label", "greeting", 45), ("a seed row in the db", "greeting", 1)]
    with session_scope(engine) as s:
        for text, label, days in rows:
            s.add(LabelledUtterance(text=text, label=label, created_at=now - timedelta(days=days),
                                    source="seed" if "seed row" in text else "admin"))
    data = build_training_data(engine=engine, now=now, config=config)
    assert data.golden == golden
    assert data.n_seed == len(seeds) - 1 and data.n_labels == 4
    assert data.train[:data.n_seed] == seeds[1:]
    assert data.train[data.n_seed:] == [("an old label", "greeting"), ("we are hiring a CTO", "job_post"),
                                        ("anyone hiring designers?", "job_post"), (a_seed[0], "feedback")]
    assert data.recent == data.train[data.n_seed + 1:]  # the 45-day-old label trains but is not evaluated
    assert data.evaluation == [*golden, *data.recent]


# --- the gate -----------------------------------------------------------------------------------------


def test_a_model_that_is_not_worse_anywhere_is_promoted() -> None:
    before, after = ev("v1", "aaaabbbbcc", "aaaabbbbca"), ev("v2", "aaaabbbbcc", "aaaabbbbcc")
    decision = gate(before=before, after=after, max_intent_drop=0.05)
    assert decision.promote and decision.code == "ok" and decision.drop == 0.0
    assert gate(before=before, after=before, max_intent_drop=0.0).promote  # equal is not worse


def test_a_model_worse_overall_is_refused() -> None:
    decision = gate(before=ev("v1", "aaaabbbb", "aaaabbbb"), after=ev("v2", "aaaabbbb", "aaaabbba"),
                    max_intent_drop=0.5)
    assert not decision.promote and decision.code == "worse_overall"
    assert "100.0% to 87.5%" in decision.reason


def test_an_intent_that_falls_more_than_the_margin_is_refused_even_when_overall_is_better() -> None:
    gold = "aaaaaaaaaabbbbbbbbbb"
    before = ev("v1", gold, "aaaaaaaaaaaaaaaaaaaa")  # b: 0 %
    after = ev("v2", gold, "aaaaaaabbbbbbbbbbbbb")  # a: 100 % -> 70 % (3 lost), b: 0 % -> 100 %
    decision = gate(before=before, after=after, max_intent_drop=0.05)
    assert after.correct() > before.correct()
    assert not decision.promote and decision.code == "intent_drop"
    assert decision.intent == "a" and decision.drop == pytest.approx(0.3)
    assert "(3 utterances)" in decision.reason
    assert gate(before=before, after=after, max_intent_drop=0.3).promote  # exactly the margin is allowed


def test_a_fall_of_one_or_two_utterances_is_noise_not_a_drop() -> None:
    gold = "aaaaaaaaaabbbbbbbbbb"
    before = ev("v1", gold, "aaaaaaaaaaaaaaaaaaaa")
    after = ev("v2", gold, "aaaaaaaabbbbbbbbbbbb")  # a: 100 % -> 80 %, but only 2 utterances
    assert gate(before=before, after=after, max_intent_drop=0.05).promote
    refused = gate(before=before, after=after, max_intent_drop=0.05, min_lost=2)
    assert not refused.promote and refused.intent == "a"


def test_new_intents_are_not_compared_and_no_baseline_promotes() -> None:
    before = ev("v1", "aabbcc", "aabbab", labels="ab")  # c is new: the old model cannot say it
    after = ev("v2", "aabbcc", "aabbcc", labels="abc")
    assert gate(before=before, after=after, max_intent_drop=0.0).promote
    decision = gate(before=None, after=after, max_intent_drop=0.0)
    assert decision.promote and decision.code == "no_baseline"


# --- the report ---------------------------------------------------------------------------------------


def _report(tmp_path: Path, *, dry_run: bool = False) -> dict[str, object]:
    before = ev("v0001", "aaaabbbbcc", "aaaabbbbaa", labels="ab", n_golden=8)
    after = ev("v0002", "aaaabbbbcc", "aaaabbbacc", labels="abc", n_golden=8)
    data = RetrainData(train=[("x", "a")] * 12, golden=[("g", "a")] * 8, recent=[("r", "c")] * 2,
                       n_seed=10, n_labels=2)
    decision = gate(before=before, after=after, max_intent_drop=0.05, min_lost=1)
    png = confusion_png(after, path=tmp_path / "runs" / "7" / "confusion.png", title="v0002")
    return build_report(ReportInputs(run_id=7, dry_run=dry_run, data=data, before=before, after=after,
                                     decision=decision, config=RetrainConfig(), base_model="minilm",
                                     seconds={"train": 3.0, "evaluate": 1.0, "total": 4.5},
                                     confusion_png=str(png)))


def test_the_report_holds_before_after_per_intent_and_the_decision(tmp_path: Path) -> None:
    report = _report(tmp_path)
    assert report["decision"] == "refused" and report["reason_code"] == "intent_drop"
    assert report["worst_intent"] == "b" and report["worst_drop"] == pytest.approx(0.25)
    assert (report["accuracy_before"], report["accuracy_after"]) == (0.8, 0.9)
    assert (report["golden_accuracy_before"], report["golden_accuracy_after"]) == (1.0, 0.875)
    assert (report["labels_accuracy_before"], report["labels_accuracy_after"]) == (0.0, 1.0)
    assert report["per_intent"] == {
        "a": {"n": 4, "before": 1.0, "after": 1.0, "delta": 0.0},
        "b": {"n": 4, "before": 1.0, "after": 0.75, "delta": -0.25},
        "c": {"n": 2, "before": None, "after": 1.0, "delta": None}}
    assert report["new_intents"] == ["c"]
    counts = (report["n_train"], report["n_eval"], report["n_golden"], report["n_recent_labels"])
    assert counts == (12, 10, 8, 2)
    assert (report["previous_version"], report["version"]) == ("v0001", "v0002")
    dry = _report(tmp_path, dry_run=True)
    assert dry["decision"] == "dry_run" and dry["would_promote"] is False


def test_the_report_reads_well_in_english_and_chinese(tmp_path: Path) -> None:
    report = _report(tmp_path)
    en = format_report(report, language="en")
    assert en.splitlines()[0] == "Retraining #7: v0002 was NOT promoted; v0001 keeps serving."
    assert "Accuracy: 80.0% -> 90.0% on 10 held-out examples (8 golden, 2 recent labels)." in en
    assert "  b: 100.0% -> 75.0% (-25.0, n=4)" in en and "  c (new): 100.0% of 2" in en
    assert "Why: recall of b would fall by 25.0%, more than the allowed 5.0%." in en
    zh = format_report(report, language="zh")
    assert "未通过检查" in zh and "准确率：80.0% → 90.0%" in zh and "c（新意图）" in zh
    dry = format_report(_report(tmp_path, dry_run=True), language="en")
    assert dry.startswith("Retraining #7 (dry run): v0002 would be refused; v0001 keeps serving.")


def test_the_confusion_matrix_is_a_png(tmp_path: Path) -> None:
    path = confusion_png(ev("v2", "aabbcc", "abbbcc"), path=tmp_path / "deep" / "c.png", title="v2")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
