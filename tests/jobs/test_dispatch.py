"""The notification outbox: queued once per key, sent at most once, missed after its grace window."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import select

from bot.messages import Button, Reply
from bot.models import Notification
from bot.notifications import direct_address, queue_direct, queue_notification, split_target
from jobs.dispatch import dispatch_due
from tests.jobs.conftest import Jobs, RecordingSender


def _queue(jobs: Jobs, key: str, *, platform: str = "slack", conversation: str = "C1", kind: str = "digest",
           minutes_ago: float = 0) -> bool:
    reply = Reply(text=f"hello {key}", buttons=(Button("RSVP", "rsvp", "3"),))
    with jobs.session() as session:
        return queue_notification(
            session, key=key, community_id=jobs.community_id, kind=kind, platform=platform,
            conversation=conversation, reply=reply, due_at=jobs.clock() - timedelta(minutes=minutes_ago),
        )


def _statuses(jobs: Jobs) -> dict[str, str]:
    with jobs.session() as session:
        return {n.key: n.status for n in session.exec(select(Notification)).all()}


def test_a_key_is_queued_once_and_sent_once_with_its_buttons(jobs: Jobs) -> None:
    assert _queue(jobs, "digest:1") is True
    assert _queue(jobs, "digest:1") is False
    assert jobs.dispatch() == 1
    assert jobs.dispatch() == 0
    [sent] = jobs.slack.log
    assert (sent.community, sent.conversation, sent.reply.text) == ("founders", "C1", "hello digest:1")
    assert sent.reply.buttons == (Button("RSVP", "rsvp", "3"),)
    assert _statuses(jobs) == {"digest:1": "sent"}


def test_late_within_grace_is_sent_once_and_past_grace_is_missed_never_sent(jobs: Jobs) -> None:
    _queue(jobs, "reminder:late", kind="reminder", minutes_ago=20)
    _queue(jobs, "reminder:too-late", kind="reminder", minutes_ago=120)
    assert jobs.dispatch() == 1
    assert [s.reply.text for s in jobs.slack.log] == ["hello reminder:late"]
    assert _statuses(jobs) == {"reminder:late": "sent", "reminder:too-late": "missed"}
    assert jobs.dispatch() == 0


def test_future_notifications_wait_for_their_time(jobs: Jobs) -> None:
    _queue(jobs, "later", minutes_ago=-5)
    assert jobs.dispatch() == 0
    jobs.clock.advance(minutes=5)
    assert jobs.dispatch() == 1


def test_a_platform_this_process_does_not_serve_waits_and_a_failure_is_not_retried(jobs: Jobs) -> None:
    _queue(jobs, "to-console", platform="console", conversation="local")
    _queue(jobs, "refused", conversation="C_GONE")
    jobs.slack.fail_for.add("C_GONE")
    report = dispatch_due(jobs.engine, senders=jobs.ctx.senders, now=jobs.clock())
    assert (report.sent, report.failed, report.waiting) == (0, 1, 1)
    assert _statuses(jobs) == {"to-console": "pending", "refused": "failed"}
    console = RecordingSender("console")
    assert dispatch_due(jobs.engine, senders={"console": console}, now=jobs.clock()).sent == 1
    assert [s.conversation for s in console.log] == ["local"]


def test_two_dispatchers_at_once_send_each_notification_once(jobs: Jobs) -> None:
    for i in range(40):
        _queue(jobs, f"n{i}", conversation=f"C{i % 3}")
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        dispatch_due(jobs.engine, senders=jobs.ctx.senders, now=jobs.clock())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    texts = [s.reply.text for s in jobs.slack.log]
    assert sorted(texts) == sorted(f"hello n{i}" for i in range(40))


def test_direct_messages_go_where_the_member_last_talked(jobs: Jobs) -> None:
    from bot.models import Member, MessageLog, PlatformIdentity

    member_id = jobs.member("ann", platform="slack", user="U_ANN")
    with jobs.session() as session:
        session.add(PlatformIdentity(community_id=jobs.community_id, member_id=member_id, platform="wechat",
                                     platform_user_id="wxid_ann"))
        session.add(MessageLog(community_id=jobs.community_id, platform="wechat", sender="wxid_ann",
                               created_at=jobs.clock()))
    with jobs.session() as session:
        member = session.get(Member, member_id)
        assert member is not None
        assert direct_address(session, member) == ("wechat", "wxid_ann")
        assert queue_direct(session, key="dm:1", member=member, kind="reminder", reply=Reply(text="hi"),
                            due_at=jobs.clock())
        assert not queue_direct(session, key="dm:1", member=member, kind="reminder", reply=Reply(text="hi"))
    jobs.dispatch()
    assert [(s.platform, s.conversation) for s in jobs.sent] == [("wechat", "wxid_ann")]


def test_announcement_targets_are_read_with_or_without_their_platform() -> None:
    assert split_target("slack:C123") == ("slack", "C123")
    assert split_target("wechat:123@chatroom") == ("wechat", "123@chatroom")
    assert split_target("123@chatroom") == ("wechat", "123@chatroom")
    assert split_target("C0123ABC") == ("slack", "C0123ABC")
    assert split_target("general") is None
