"""The admin commands of retraining through the router: /bot review, label, retrain, rollback, status; the
audit log; and the polite refusal of everyone else."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot.db import session_scope, upgrade_database
from bot.models import (
    AdminAction,
    Community,
    LabelledUtterance,
    MessageLog,
    ModelVersion,
    Notification,
    TrainingRun,
    TrainingRunStatus,
)
from bot.settings import Settings
from tests.retrain.chatbot import ADMIN, MEMBER, NOW, ChatBot, with_community


@pytest.fixture
def bot(engine: Engine, settings: Settings) -> ChatBot:
    return ChatBot(with_community(engine), settings)


def flag(bot: ChatBot, *texts: str) -> list[int]:
    """Send ``texts`` as low-confidence questions (flagged for review), a minute apart; their log ids."""
    for i, text in enumerate(texts):
        bot.send(f"mumble {text}", at=NOW - timedelta(minutes=len(texts) - i))
    return [r.id or 0 for r in bot.rows(MessageLog, col(MessageLog.needs_review).is_(True))]


def actions(bot: ChatBot) -> list[str]:
    return [a.action for a in bot.rows(AdminAction)]


def version(name: str, status: str, accuracy: float | None = None) -> ModelVersion:
    metrics = {"accuracy": accuracy, "macro_f1": accuracy} if accuracy is not None else {}
    return ModelVersion(version=name, path=f"/models/{name}", base_model="m", labels=["find_member"],
                        metrics=metrics, status=status)


# --- who may ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    "/bot review", "/bot review dismiss 1", '/bot label "hi" greeting', "/bot label 1 greeting",
    "/bot retrain", "/bot retrain --dry-run", "/bot rollback", "/bot rollback v0001", "/bot status",
    "/bot config", "/机器人 状态",
])
def test_everyone_else_is_refused_politely(bot: ChatBot, command: str) -> None:
    reply = bot.send(command).text
    assert reply.startswith(("Only community admins can", "只有社区管理员可以"))
    assert bot.rows(AdminAction) == [] and bot.rows(TrainingRun) == [] and bot.rows(LabelledUtterance) == []
    assert bot.retrainer.started == []


# --- /bot review ------------------------------------------------------------------------------------------

def test_review_lists_the_oldest_flagged_messages(bot: ChatBot) -> None:
    ids = flag(bot, "first question", "second question", "third question")
    result = bot.send("/bot review 2", sender=ADMIN)
    reply = result.replies[0]
    assert reply.private
    lines = reply.text.splitlines()
    assert lines[0] == "Review queue: 3 flagged, oldest first (showing 2):"
    assert lines[1] == f"#{ids[0]} · Mon 1 Mar 2027, 08:57 · find_member 0.30 · “mumble first question”"
    assert lines[2].startswith(f"#{ids[1]} · ") and "third" not in reply.text
    assert "/bot label ID INTENT" in lines[3]
    [audit] = bot.rows(AdminAction)
    assert (audit.action, audit.actor) == ("review.show", f"test:{ADMIN}")
    assert audit.detail == {"shown": 2, "total": 3}


def test_review_clips_long_texts_and_says_when_the_queue_is_empty(bot: ChatBot) -> None:
    assert bot.admin("/bot review") == "The review queue is empty."
    flag(bot, "x" * 300)
    listing = bot.admin("/bot review")
    assert "xxx…”" in listing and "x" * 100 not in listing
    assert bot.admin("/机器人 审核").startswith("待审核队列：共 1 条")


@pytest.mark.parametrize("args", ["0", "51", "two", "1 2"])
def test_review_refuses_a_bad_count(bot: ChatBot, args: str) -> None:
    assert "Usage: /bot review [N]" in bot.admin(f"/bot review {args}")


def test_review_dismiss_takes_messages_out_of_the_queue(bot: ChatBot) -> None:
    ids = flag(bot, "spam one", "spam two", "real question")
    assert bot.admin(f"/bot review dismiss {ids[0]} #{ids[1]}") == (
        f"Taken out of the review queue: #{ids[0]}, #{ids[1]}.")
    assert bot.flagged() == ["mumble real question"]
    assert "There is no message #999" in bot.admin("/bot review dismiss #999")
    assert bot.rows(AdminAction)[-1].detail == {"ids": ids[:2]}


# --- /bot label -------------------------------------------------------------------------------------------

def test_label_by_message_id(bot: ChatBot) -> None:
    [first, second] = flag(bot, "who does seed rounds", "anything else")
    reply = bot.admin(f"/bot label {first} find_member")
    assert reply == ("Labelled “mumble who does seed rounds” as find_member. "
                     "The next /bot retrain will learn it.")
    [utterance] = bot.rows(LabelledUtterance)
    assert (utterance.text, utterance.label, utterance.language, utterance.source) == (
        "mumble who does seed rounds", "find_member", "en", "admin")
    assert utterance.community_id is not None
    assert [r.id for r in bot.rows(MessageLog, col(MessageLog.needs_review).is_(True))] == [second]
    [row] = bot.rows(MessageLog, MessageLog.id == first)
    assert row.intent == "find_member" and row.confidence == pytest.approx(0.3)  # the prediction is kept
    audit = bot.rows(AdminAction)[-1]
    assert audit.action == "label"
    assert audit.detail["message_id"] == first and audit.detail["label"] == "find_member"


def test_label_by_text_and_relabel(bot: ChatBot) -> None:
    flag(bot, "seed rounds?")
    reply = bot.admin('/bot label “mumble seed rounds?” find-member')
    assert reply.startswith("Labelled “mumble seed rounds?” as find_member.")
    assert bot.flagged() == []  # the flagged message with that very text is reviewed now
    chinese = bot.admin("/bot label 天使轮 谁懂 out_of_scope")
    assert chinese.startswith("已把“天使轮 谁懂”标注为 out_of_scope。")
    relabel = bot.admin('/bot label "mumble seed rounds?" find_resource')
    assert relabel.startswith("Labelled “mumble seed rounds?” as find_resource, was find_member.")
    labels = {(u.text, u.label, u.language) for u in bot.rows(LabelledUtterance)}
    assert labels == {("mumble seed rounds?", "find_resource", "en"), ("天使轮 谁懂", "out_of_scope", "zh")}


def test_an_unknown_intent_is_refused_with_a_suggestion_and_new_is_accepted(bot: ChatBot) -> None:
    refused = bot.admin('/bot label "who knows hardware" find_memeber')
    assert refused.startswith("Unknown intent 'find_memeber'. Did you mean find_member? "
                              "To add a new intent, repeat with --new.")
    assert "--new" in refused.splitlines()[-1]  # the usage line says so too
    far = bot.admin('/bot label "refund my ticket" billing')
    assert "Known intents: feedback, find_event, find_member" in far
    assert bot.rows(LabelledUtterance) == []
    accepted = bot.admin('/bot label "refund my ticket" billing --new')
    assert accepted.startswith("Labelled “refund my ticket” as billing (a new intent).")
    assert "Labelled" in bot.admin('/bot label "money back for the meetup" billing')  # known now
    assert [u.label for u in bot.rows(LabelledUtterance)] == ["billing", "billing"]
    assert [a.detail["new"] for a in bot.rows(AdminAction)] == [True, False]


def test_the_serving_models_labels_are_known(bot: ChatBot) -> None:
    bot.add(ModelVersion(version="v0001", path="/m", base_model="m", labels=["oos", "visa"], status="active"))
    assert bot.admin('/bot label "my visa expires" visa').startswith("Labelled")


@pytest.mark.parametrize(("command", "message"), [
    ("/bot label find_member", "Give the text (in quotes) or a message id, then the intent."),
    ('/bot label "" find_member', "The text to label is empty."),
    ('/bot label "hi" 9lives', "is not an intent name"),
    ("/bot label #4242 greeting", "There is no message #4242 in this community."),
    ('/bot label "hi" greeting --bogus', "Unknown option --bogus."),
])
def test_label_usage_errors(bot: ChatBot, command: str, message: str) -> None:
    reply = bot.admin(command)
    assert message in reply
    assert bot.rows(LabelledUtterance) == []


def test_a_command_cannot_be_labelled(bot: ChatBot) -> None:
    bot.send("/event list")
    [row] = bot.rows(MessageLog, MessageLog.text == "/event list")
    assert "is a command" in bot.admin(f"/bot label {row.id} find_event")


# --- /bot retrain -----------------------------------------------------------------------------------------

def test_retrain_queues_one_run_and_starts_it_once_after_commit(bot: ChatBot) -> None:
    reply = bot.admin("/bot retrain")
    [run] = bot.rows(TrainingRun)
    assert reply == f"Retraining started (#{run.id}); I'll post progress to you directly."
    assert bot.retrainer.started == [run.id] and bot.retrainer.committed == [True]
    assert (run.requested_by, run.platform, run.conversation, run.language) == (
        f"test:{ADMIN}", "test", ADMIN, "en")
    assert (run.status, run.active, run.dry_run) == (TrainingRunStatus.QUEUED, 1, False)
    [audit] = bot.rows(AdminAction)
    assert (audit.action, audit.detail) == ("retrain", {"run": run.id, "dry_run": False, "reaped": None})


@pytest.mark.parametrize("command", [
    "/bot retrain --dry-run", "/bot retrain —dry-run", "/机器人 训练 --试运行",
])
def test_retrain_dry_run_is_recorded(bot: ChatBot, command: str) -> None:
    reply = bot.admin(command)
    [run] = bot.rows(TrainingRun)
    assert run.dry_run is True
    assert "Dry run" in reply or "试运行" in reply


def test_a_second_retrain_while_one_runs_starts_nothing(bot: ChatBot) -> None:
    bot.admin("/bot retrain")
    bot.now = NOW + timedelta(seconds=30)
    reply = bot.admin("/bot retrain")
    [run] = bot.rows(TrainingRun)
    assert reply.startswith(f"A retraining is already running (#{run.id}, started Mon 1 Mar 2027, 09:00, "
                            f"test:{ADMIN}).")
    assert bot.retrainer.started == [run.id]
    assert actions(bot) == ["retrain"]


def test_two_retrains_at_once_give_one_run(bot: ChatBot) -> None:
    retrain_twice_at_once(bot)


def test_two_retrains_at_once_give_one_run_on_postgresql(pg_engine: Engine, settings: Settings) -> None:
    upgrade_database(pg_engine)
    with session_scope(pg_engine) as session:
        session.add(Community(name="default", settings={"admins": [ADMIN]}))
    bot = ChatBot(pg_engine, settings)
    first = retrain_twice_at_once(bot)  # PostgreSQL's sequence may give the winner id 1 or 2
    bot.now = NOW + timedelta(minutes=5)  # the worker never reported: reaped, and a new run starts
    assert bot.admin("/bot retrain").endswith(f"(Run #{first} had stopped responding and was marked failed.)")
    assert [(r.status, r.active) for r in bot.rows(TrainingRun)] == [
        (TrainingRunStatus.FAILED, None), (TrainingRunStatus.QUEUED, 1)]
    assert bot.retrainer.started == [r.id for r in bot.rows(TrainingRun)]


def retrain_twice_at_once(bot: ChatBot) -> int:
    """Two admins' ``/bot retrain`` at the same instant: one run starts; returns its id."""
    bot.admin("/bot status")  # the admin's member row exists, as it would for a second command
    barrier = threading.Barrier(2)
    replies: list[str] = []

    def retrain() -> None:
        barrier.wait()
        replies.append(bot.admin("/bot retrain"))

    threads = [threading.Thread(target=retrain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    [run] = bot.rows(TrainingRun)
    assert bot.retrainer.started == [run.id]
    assert sorted(r.split(" (")[0] for r in replies) == [
        "A retraining is already running", "Retraining started"]
    assert run.id is not None
    return run.id


def test_a_run_whose_heartbeat_is_recent_is_not_reaped(bot: ChatBot) -> None:
    bot.add(TrainingRun(community_id=1, requested_by="test:someone", platform="test", conversation="x",
                        status=TrainingRunStatus.RUNNING, created_at=NOW - timedelta(hours=1),
                        started_at=NOW - timedelta(hours=1), heartbeat_at=NOW - timedelta(seconds=60)))
    assert "already running (#1" in bot.admin("/bot retrain")
    assert bot.retrainer.started == []


def test_a_stale_run_is_reaped_and_a_new_one_starts(bot: ChatBot) -> None:
    bot.add(TrainingRun(community_id=1, requested_by="test:someone", platform="test", conversation="x",
                        status=TrainingRunStatus.RUNNING, created_at=NOW - timedelta(hours=1),
                        started_at=NOW - timedelta(hours=1), heartbeat_at=NOW - timedelta(seconds=91)))
    reply = bot.admin("/bot retrain")
    old, new = bot.rows(TrainingRun)
    assert (old.status, old.active, old.finished_at) == (TrainingRunStatus.FAILED, None, NOW)
    assert "stopped" in old.error
    assert (new.status, new.active) == (TrainingRunStatus.QUEUED, 1)
    assert bot.retrainer.started == [new.id]
    assert reply.endswith("(Run #1 had stopped responding and was marked failed.)")
    assert bot.rows(AdminAction)[-1].detail["reaped"] == old.id
    [note] = bot.rows(Notification)
    assert (note.key, note.platform, note.conversation) == ("retrain:1:reaped", "test", "x")
    assert note.text.startswith("Retraining #1 stopped: the training worker stopped responding.")


def test_a_queued_run_that_never_started_is_reaped_too(bot: ChatBot) -> None:
    bot.add(TrainingRun(community_id=1, requested_by="test:someone", platform="test", conversation="x",
                        created_at=NOW - timedelta(minutes=5)))
    bot.admin("/bot retrain")
    assert [(r.status, r.active) for r in bot.rows(TrainingRun)] == [
        (TrainingRunStatus.FAILED, None), (TrainingRunStatus.QUEUED, 1)]


def test_retrain_without_a_worker_says_so(engine: Engine, settings: Settings) -> None:
    bot = ChatBot(with_community(engine), settings, retrainer=False)
    assert "no training worker" in bot.admin("/bot retrain")
    assert bot.rows(TrainingRun) == []


def test_a_worker_that_cannot_start_does_not_block_the_next_retrain(bot: ChatBot) -> None:
    bot.retrainer.error = OSError("no processes left")
    reply = bot.admin("/bot retrain")
    assert reply == ("Could not start the training worker (no processes left). "
                     "The current model keeps serving.")
    [run] = bot.rows(TrainingRun)
    assert (run.status, run.active) == (TrainingRunStatus.FAILED, None) and "no processes left" in run.error
    bot.retrainer.error = None
    assert bot.admin("/bot retrain").startswith("Retraining started (#2)")


def test_retrain_takes_no_words(bot: ChatBot) -> None:
    assert "Usage: /bot retrain [--dry-run]" in bot.admin("/bot retrain now please")
    assert bot.rows(TrainingRun) == []


# --- /bot rollback ----------------------------------------------------------------------------------------

def test_rollback_to_the_previous_version_and_forward_again(bot: ChatBot) -> None:
    bot.add(version("v0001", "retired", 0.81), version("v0002", "retired", 0.86),
            version("v0003", "active", 0.9))
    reply = bot.admin("/bot rollback")
    assert reply == "Rolled back: v0002 now serves (was v0003); accuracy 0.86, macro F1 0.86."
    assert {v.version: v.status for v in bot.rows(ModelVersion)} == {
        "v0001": "retired", "v0002": "active", "v0003": "retired"}
    assert bot.admin("/bot rollback 3").startswith("Rolled back: v0003 now serves (was v0002)")
    assert bot.admin("/bot rollback V0003") == "v0003 is already serving."
    assert [(a.action, a.detail) for a in bot.rows(AdminAction)] == [
        ("rollback", {"to": "v0002", "previous": "v0003"}),
        ("rollback", {"to": "v0003", "previous": "v0002"}),
    ]


def test_rollback_to_an_unknown_version_lists_the_known_ones(bot: ChatBot) -> None:
    bot.add(version("v0001", "retired", 0.81), version("v0002", "failed"), version("v0003", "active", 0.9))
    reply = bot.admin("/bot rollback v0009")
    assert reply.startswith("There is no model version 'v0009'. Known versions: "
                            "v0003 (active, accuracy 0.90, macro F1 0.90), v0002 (failed), "
                            "v0001 (retired, accuracy 0.81, macro F1 0.81).")
    assert "v0002 is failed and cannot serve." in bot.admin("/bot rollback v0002")
    assert [v.status for v in bot.rows(ModelVersion)] == ["retired", "failed", "active"]


def test_rollback_with_nothing_earlier(bot: ChatBot) -> None:
    bot.add(version("v0001", "active"))
    assert bot.admin("/bot rollback").startswith("There is no earlier model version to roll back to.")
    assert bot.admin("/机器人 回滚").startswith("没有可以回滚到的更早版本。")


def test_rollback_while_a_retrain_runs_says_it_may_be_replaced(bot: ChatBot) -> None:
    bot.add(version("v0001", "retired"), version("v0002", "active"))
    bot.admin("/bot retrain")
    assert "Retraining #1 is in progress" in bot.admin("/bot rollback")


# --- /bot status ------------------------------------------------------------------------------------------

def test_status_shows_the_serving_version_the_queue_and_the_last_run(bot: ChatBot) -> None:
    empty = bot.send("/bot status", sender=ADMIN).replies[0]
    assert empty.private
    assert empty.text.splitlines() == [
        "Serving model: none recorded yet.",
        "Review queue: 0 message(s) (/bot review).",
        "Last training: none yet (/bot retrain).",
    ]
    bot.add(version("v0001", "retired", 0.8), version("v0002", "active", 0.9123))
    flag(bot, "one", "two")
    bot.add(TrainingRun(community_id=1, requested_by="test:x", platform="test", conversation="x",
                        status=TrainingRunStatus.REFUSED, active=None, version="v0003",
                        created_at=NOW - timedelta(hours=2), finished_at=NOW - timedelta(hours=1),
                        report={"decision": "refused", "accuracy_before": 0.9, "accuracy_after": 0.88,
                                "reason": "fewer evaluation rows right than the serving model",
                                "reason_code": "worse_overall"}))
    lines = bot.admin("/bot status").splitlines()
    assert lines[0].startswith("Serving model: v0002 (trained ") and lines[0].endswith(
        "; accuracy 0.91, macro F1 0.91).")
    assert lines[1] == "Review queue: 2 message(s) (/bot review)."
    assert lines[2] == ("Last training: #1 · refused · Mon 1 Mar 2027, 08:00 · v0003 · accuracy 0.90 → 0.88"
                        " · fewer evaluation rows right than the serving model")
    assert actions(bot) == ["status", "status"]
    chinese = bot.admin("/机器人 状态").splitlines()
    assert chinese[1] == "待审核队列：2 条（/机器人 审核）。"
    assert chinese[2].endswith("v0003 · 准确率 0.90 → 0.88 · 整体准确率下降")


# --- the audit log ----------------------------------------------------------------------------------------

def test_every_admin_command_is_audited(bot: ChatBot) -> None:
    bot.add(version("v0001", "retired"), version("v0002", "active"))
    [first] = flag(bot, "q")
    for command in ("/bot config", "/bot config timezone Asia/Shanghai", "/bot review",
                    f"/bot label {first} find_member", "/bot retrain --dry-run", "/bot rollback",
                    "/bot status"):
        bot.admin(command)
    assert actions(bot) == [
        "config.show", "config.set", "review.show", "label", "retrain", "rollback", "status"]
    config_set = bot.rows(AdminAction)[1]
    assert config_set.detail == {"key": "timezone", "value": "Asia/Shanghai", "previous": "UTC"}
    assert {a.actor for a in bot.rows(AdminAction)} == {f"test:{ADMIN}"}
    assert all(a.created_at == NOW for a in bot.rows(AdminAction))


def test_a_refused_change_leaves_no_audit_row(bot: ChatBot) -> None:
    bot.admin("/bot config timezone Mars/Base")
    bot.admin('/bot label "x" nosuchintent')
    assert bot.rows(AdminAction) == []
    assert bot.send("/bot status", sender=MEMBER).text.startswith("Only community admins")
