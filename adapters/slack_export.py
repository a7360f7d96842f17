"""Importing a Slack workspace export: members from ``users.json``, answered questions (Q&A threads) as
resources.

A Slack export (Workspace settings -> Import/Export Data -> Export, unzipped) holds ``users.json``,
``channels.json`` (public channels; ``groups.json`` for private ones when exported) and one folder per
channel, named after it, of ``YYYY-MM-DD.json`` files, each a list of that day's messages in order.
Direct messages (``dms.json``, ``mpims.json``) are never imported.

- **Members**: every user except deleted ones, bots and apps (``USLACKBOT`` included) becomes a
  :class:`~bot.models.Member` keyed ``slack:<user id>`` with a :class:`~bot.models.PlatformIdentity`
  (platform ``slack``), so a re-import updates them and the Slack adapter recognises them. A member the
  adapter already created for that Slack user is adopted, not duplicated. Members this import creates are
  not suggested to others unless ``consent`` (they never agreed to it); members already stored keep their
  own choice.
- **Q&A threads**: a thread root (a message with replies) that has at least one reply from another person
  becomes a :class:`~bot.models.Resource`: title = the question's first line (with the next one when the
  first is only a greeting), description = the replies (at most :data:`MAX_DESCRIPTION` characters),
  url = the first link of the replies (else of the question),
  tags ``slack, <channel>``, key ``slack:<channel id>:<ts>``, source ``slack-export``. Text is decoded with
  :func:`adapters.slack_markup.decode`. Join/leave and other system messages, bot messages and empty texts
  are left out; a reply broadcast to the channel (``thread_broadcast``) counts as a reply.

Replies are tied to their question by ``thread_ts``. Exports whose timestamps were removed or anonymised
(``"ts": "[phone]"``) still import: a reply then goes to the latest open question of its
``parent_user_id`` whose ``replies`` list expects that author next, and the thread is keyed by its
``client_msg_id`` (the report warns once per channel).
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from adapters.slack_markup import decode, user_display_name
from bot.community import is_timezone
from bot.errors import ImportFormatError
from bot.importers.links import normalise_link
from bot.importers.sources import read_table
from bot.language import dominant_language
from bot.models import Community, Member, PlatformIdentity, Resource, utcnow

PLATFORM = "slack"
SOURCE = "slack-export"
#: The longest description of a thread resource, in characters (the replies are cut at a word with "…").
MAX_DESCRIPTION = 2000
_MAX_TITLE = 300
#: A first line shorter than this (``good morning,``) gets the next line joined to it in a title.
_GREETING_MAX = 30
#: Message subtypes that are a person's own words; every other subtype (channel_join, channel_leave,
#: channel_topic, bot_message, tombstone, ...) is left out.
_PERSON_SUBTYPES = frozenset({"", "thread_broadcast", "file_share", "me_message"})
_SLACK_TS = re.compile(r"^\d+\.\d+$")
#: Show a progress bar (stderr) when an export has more day files than this.
_PROGRESS_MIN_FILES = 200


@dataclass(frozen=True)
class ExportProblem:
    """A skipped user or thread, or a warning: ``file`` (relative to the export), the 1-based ``line`` where
    the item starts, and what happened."""

    file: str
    line: int
    message: str

    def to_dict(self, key: str) -> dict[str, Any]:
        """``{"line", key, "file"}``: the entry shape of the other importers' ``--json`` plus the file."""
        return {"line": self.line, key: self.message, "file": self.file}


@dataclass
class Counts:
    """Rows created, updated (stored values changed) and unchanged, and items skipped, of one kind."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, int]:
        """``{"created", "updated", "unchanged", "skipped"}``."""
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped}


@dataclass
class SlackExportReport:
    """What a Slack export import did.

    Attributes:
        source: the export folder's name.
        members: counts of members (from ``users.json``).
        threads: counts of Q&A threads (stored as resources).
        skipped: skipped users and threads, with where they are and why.
        warnings: problems that cost nothing or only one file (an unreadable day file, missing timestamps).
        ignored: messages that are not questions or answers, by reason (``{"channel_join": 38, ...}``).
        channels: channels listed in ``channels.json`` / ``groups.json``.
        channels_with_messages: of those, how many have a folder in the export.
    """

    source: str
    members: Counts = field(default_factory=Counts)
    threads: Counts = field(default_factory=Counts)
    skipped: list[ExportProblem] = field(default_factory=list)
    warnings: list[ExportProblem] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    channels: int = 0
    channels_with_messages: int = 0

    def skip(self, counts: Counts, file: str, line: int, reason: str) -> None:
        """Record a skipped user or thread (``counts`` is :attr:`members` or :attr:`threads`)."""
        counts.skipped += 1
        self.skipped.append(ExportProblem(file, line, reason))

    def warn(self, file: str, line: int, message: str) -> None:
        """Record a warning about ``file`` at ``line``."""
        self.warnings.append(ExportProblem(file, line, message))

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape of every importer (``created``, ``updated``, ``unchanged`` summed over
        members and threads, ``skipped`` as ``[{"line", "reason", "file"}]``, ``warnings`` as
        ``[{"line", "message", "file"}]``, ``mapping``, ``alternatives``, ``key``, ``merged``,
        ``unused_columns``, ``kind``, ``source``) plus ``members`` and ``resources`` (each
        ``{"created", "updated", "unchanged", "skipped"}``), ``ignored`` (reason -> messages) and
        ``channels`` (``{"listed", "with_messages"}``)."""
        kinds = (self.members, self.threads)
        return {
            "created": sum(c.created for c in kinds),
            "updated": sum(c.updated for c in kinds),
            "unchanged": sum(c.unchanged for c in kinds),
            "skipped": [s.to_dict("reason") for s in self.skipped],
            "warnings": [w.to_dict("message") for w in self.warnings],
            "mapping": {"name": "profile.display_name", "timezone": "tz",
                        "title": "thread question (first line)", "description": "thread replies",
                        "url": "first link of the replies", "tags": "channel name"},
            "alternatives": {"name": ["profile.real_name", "real_name", "name"]},
            "key": "slack:<user id> (members), slack:<channel id>:<ts> (threads)",
            "merged": [],
            "unused_columns": [],
            "kind": "slack-export",
            "source": self.source,
            "members": self.members.to_dict(),
            "resources": self.threads.to_dict(),
            "ignored": dict(sorted(self.ignored.items())),
            "channels": {"listed": self.channels, "with_messages": self.channels_with_messages},
        }

    def summary_lines(self) -> list[str]:
        """Human-readable lines: counts per kind, ignored messages by reason, then skipped and warnings."""
        m, t = self.members, self.threads
        lines = [
            f"Slack export {self.source}: {self.channels_with_messages} of {self.channels} channels have "
            "messages in it.",
            f"Members: {m.created} created, {m.updated} updated, {m.unchanged} unchanged, "
            f"{m.skipped} skipped.",
            f"Q&A threads (resources): {t.created} created, {t.updated} updated, {t.unchanged} unchanged, "
            f"{t.skipped} skipped.",
        ]
        if self.ignored:
            total = sum(self.ignored.values())
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.ignored.items(), key=lambda i: -i[1]))
            lines.append(f"Messages left out: {total} ({reasons}).")
        lines += [f"  {s.file} line {s.line}: skipped: {s.message}" for s in self.skipped]
        lines += [f"  {w.file} line {w.line}: warning: {w.message}" for w in self.warnings]
        return lines


# --- reading the export ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One object of an export file and where it starts."""

    file: str
    line: int
    data: dict[str, Any]


def _items(root: Path, path: Path, report: SlackExportReport, *, required: bool = False) -> list[_Item]:
    """The objects of the JSON list in ``path``; a file that cannot be read is a warning (an error when
    ``required``)."""
    rel = path.relative_to(root).as_posix()
    try:
        table = read_table(path)
    except ImportFormatError as exc:
        if required:
            raise ImportFormatError(f"{rel} cannot be read: {exc.user_message}") from exc
        report.warn(rel, 1, f"file left out: {exc.user_message}")
        return []
    items = []
    for row in table.rows:
        if row.error:
            report.warn(rel, row.line, f"item left out: {row.error}")
        else:
            items.append(_Item(rel, row.line, row.values))
    return items


def check_export_dir(path: Path) -> Path:
    """``path`` as an unpacked Slack export folder.

    Raises:
        ImportFormatError: it does not exist, is the ZIP itself, or has no ``users.json`` (naming the
            subfolder that has one, when there is exactly one).
    """
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".zip":
            raise ImportFormatError(
                f"{path} is the export ZIP: unpack it first (unzip {path.name} -d {path.stem}) and pass the "
                "folder.")
        raise ImportFormatError(f"{path} is a file; pass the folder of an unpacked Slack export.")
    if not path.is_dir():
        raise ImportFormatError(f"No such folder: {path}.")
    if not (path / "users.json").is_file():
        nested = [p.parent for p in path.glob("*/users.json")]
        hint = f" Found one in {nested[0]}: pass that folder." if len(nested) == 1 else ""
        raise ImportFormatError(
            f"{path} is not a Slack export: it has no users.json. Expected the unpacked export ZIP "
            "(Workspace settings -> Import/Export Data -> Export): users.json, channels.json and one folder "
            f"per channel of YYYY-MM-DD.json files.{hint}"
        )
    return path


def _is_bot(user: Mapping[str, Any]) -> bool:
    return bool(user.get("is_bot") or user.get("is_app_user") or user.get("id") == "USLACKBOT")


# --- members ---------------------------------------------------------------------------------------


def _import_members(
    session: Session, *, community_id: int, users: Sequence[_Item], consent: bool, report: SlackExportReport
) -> None:
    stored = session.exec(select(Member).where(Member.community_id == community_id,
                                               col(Member.external_key).startswith("slack:"))).all()
    by_key = {m.external_key: m for m in stored}
    identities = {i.platform_user_id: i for i in session.exec(
        select(PlatformIdentity).where(PlatformIdentity.community_id == community_id,
                                       PlatformIdentity.platform == PLATFORM)).all()}
    now = utcnow()
    seen: set[str] = set()
    for item in users:
        user = item.data
        user_id = str(user.get("id") or "").strip()
        name = user_display_name(user)
        if not user_id:
            report.skip(report.members, item.file, item.line, "no user id")
            continue
        if user_id in seen:
            report.skip(report.members, item.file, item.line, f"{user_id} is listed twice; the first is kept")
            continue
        seen.add(user_id)
        if _is_bot(user):
            report.skip(report.members, item.file, item.line, f"bot or app {user_id} ({name or 'no name'})")
            continue
        if user.get("deleted"):
            report.skip(report.members, item.file, item.line, f"deleted user {user_id} ({name or 'no name'})")
            continue
        if not name:
            report.skip(report.members, item.file, item.line, f"{user_id} has no name")
            continue
        zone = user.get("tz") if isinstance(user.get("tz"), str) and is_timezone(user["tz"]) else ""
        key = f"slack:{user_id}"
        identity = identities.get(user_id)
        member = by_key.get(key)
        if member is None and identity is not None:
            member = session.get(Member, identity.member_id)  # created by the adapter on first contact
        zone = zone or (member.timezone if member else "")
        values: dict[str, Any] = {"display_name": name, "timezone": zone, "external_key": key}
        if member is None:
            member = Member(community_id=community_id, display_name=name, timezone=zone,
                            external_key=key, consent_suggest=consent, source=SOURCE, created_at=now,
                            updated_at=now)
            session.add(member)
            session.flush()
            report.members.created += 1
        else:
            changed = {k: v for k, v in values.items() if getattr(member, k) != v}
            if changed:
                for attr, value in changed.items():
                    setattr(member, attr, value)
                member.updated_at = now
                session.add(member)
                report.members.updated += 1
            else:
                report.members.unchanged += 1
        assert member.id is not None
        if identity is None:
            identity = PlatformIdentity(community_id=community_id, member_id=member.id, platform=PLATFORM,
                                        platform_user_id=user_id, display_name=name)
            identities[user_id] = identity
            session.add(identity)
        elif identity.display_name != name or identity.member_id != member.id:
            identity.display_name, identity.member_id = name, member.id
            session.add(identity)
    session.flush()


# --- threads ---------------------------------------------------------------------------------------


@dataclass
class _Thread:
    """A question (thread root) and the replies found for it."""

    item: _Item
    channel_id: str
    channel_name: str
    replies: list[_Item] = field(default_factory=list)

    @property
    def expected(self) -> list[str]:
        """Authors of the replies in the order the root's ``replies`` list gives them (may be empty)."""
        return [str(r.get("user", "")) for r in self.item.data.get("replies") or () if isinstance(r, dict)]

    @property
    def capacity(self) -> int:
        data = self.item.data
        return max(len(self.expected), int(data.get("reply_count") or 0))


def _valid_ts(value: Any) -> str | None:
    return value if isinstance(value, str) and _SLACK_TS.match(value) else None


def _is_root(msg: Mapping[str, Any]) -> bool:
    return bool(msg.get("reply_count")) or bool(msg.get("replies"))


def _is_reply(msg: Mapping[str, Any]) -> bool:
    if msg.get("parent_user_id") or isinstance(msg.get("root"), dict):
        return True
    ts, thread_ts = _valid_ts(msg.get("ts")), _valid_ts(msg.get("thread_ts"))
    return bool(ts and thread_ts and ts != thread_ts)


def _left_out(msg: Mapping[str, Any], bots: set[str]) -> str | None:
    """Why a message is not a person's question or answer, or None when it is one."""
    if msg.get("type", "message") != "message":
        return f"{msg.get('type')} items"
    subtype = str(msg.get("subtype") or "")
    if subtype == "bot_message" or msg.get("bot_id") or str(msg.get("user") or "") in bots:
        return "bot messages"
    if subtype not in _PERSON_SUBTYPES:
        return f"{subtype} messages"
    if not str(msg.get("text") or "").strip():
        return "empty messages"
    return None


def _thread_key(thread: _Thread) -> tuple[str, bool]:
    """``slack:<channel id>:<ts>`` and whether the real ``ts`` was used; without one, the message's
    ``client_msg_id`` (else a hash of author and text) stands in."""
    data = thread.item.data
    ts = _valid_ts(data.get("ts"))
    if ts:
        return f"slack:{thread.channel_id}:{ts}", True
    stand_in = str(data.get("client_msg_id") or "")
    if not stand_in:
        digest = hashlib.sha1(f"{data.get('user')}\n{data.get('text')}".encode()).hexdigest()[:16]
        stand_in = f"sha1-{digest}"
    return f"slack:{thread.channel_id}:{stand_in}", False


def _attach(reply: _Item, by_asker: Mapping[str, list[_Thread]], by_ts: Mapping[str, _Thread],
            by_client_id: Mapping[str, _Thread]) -> _Thread | None:
    """The thread ``reply`` belongs to: by ``thread_ts``, by its broadcast ``root``, else the latest open
    question of its ``parent_user_id`` whose ``replies`` list expects this author next."""
    msg = reply.data
    thread_ts = _valid_ts(msg.get("thread_ts"))
    if thread_ts:
        return by_ts.get(thread_ts)  # None: the question is older than the export
    root = msg.get("root")
    if isinstance(root, dict):
        if _valid_ts(root.get("ts")) in by_ts:
            return by_ts[str(root["ts"])]
        if root.get("client_msg_id") in by_client_id:
            return by_client_id[str(root["client_msg_id"])]
        return None  # a broadcast is listed in its root's replies only as a copy: never guess
    author = str(msg.get("user") or "")
    open_ = [t for t in by_asker.get(str(msg.get("parent_user_id") or ""), ()) if len(t.replies) < t.capacity]
    for thread in reversed(open_):
        expected = thread.expected
        if len(thread.replies) < len(expected) and expected[len(thread.replies)] == author:
            return thread
    return open_[-1] if open_ else None


def _title(text: str, urls: Sequence[str]) -> str:
    """The question's first line, made a useful title: a line that is only a link is passed over when text
    follows, and a greeting (``good morning,``, ``hello team,``: short, or ending with ``,`` or ``:``) gets
    the next line joined to it. At most 300 characters."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    worded = [line for line in lines if line not in urls]
    lines = worded or lines
    title = lines[0] if lines else ""
    for line in lines[1:]:
        if len(title) >= _GREETING_MAX and not title.endswith((",", ":", "，", "：")):
            break
        title = f"{title} {line}"
    return title if len(title) <= _MAX_TITLE else title[: _MAX_TITLE - 1].rstrip() + "…"


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


def _first_link(urls: Iterable[str]) -> str:
    return next((link for url in urls if (link := normalise_link(url))), "")


def _read_channel(root: Path, folder: Path, channel_id: str, channel_name: str, bots: set[str],
                  report: SlackExportReport, progress: Any) -> list[_Thread]:
    """The threads of one channel folder, with their replies attached."""
    threads: list[_Thread] = []
    by_asker: dict[str, list[_Thread]] = {}
    by_ts: dict[str, _Thread] = {}
    by_client_id: dict[str, _Thread] = {}
    for day in sorted(folder.glob("*.json")):
        for item in _items(root, day, report):
            msg = item.data
            if _is_root(msg):
                thread = _Thread(item, channel_id, channel_name)
                threads.append(thread)
                by_asker.setdefault(str(msg.get("user") or ""), []).append(thread)
                if ts := _valid_ts(msg.get("ts")):
                    by_ts[ts] = thread
                if msg.get("client_msg_id"):
                    by_client_id[str(msg["client_msg_id"])] = thread
            elif _is_reply(msg):
                thread_of = _attach(item, by_asker, by_ts, by_client_id)
                if thread_of is None:
                    report.ignored["replies whose question is not in the export"] += 1
                else:
                    thread_of.replies.append(item)
            else:
                report.ignored[_left_out(msg, bots) or "messages without replies"] += 1
        progress.update(1)
    return threads


def _thread_values(thread: _Thread, *, bots: set[str], users: Mapping[str, str],
                   channels: Mapping[str, str]) -> dict[str, Any] | str:
    """The resource values of ``thread``, or why it is skipped."""
    question = thread.item.data
    why = _left_out(question, bots)
    if question.get("subtype") == "tombstone":
        return "the question was deleted"
    if why == "bot messages":
        return "the question was posted by a bot"
    if why == "empty messages":
        return "the question has no text (only a file or an image?)"
    if why:
        return f"the question is not a person's message ({why})"
    asker = str(question.get("user") or "")
    answers = [r for r in thread.replies if _left_out(r.data, bots) is None]
    if not any(str(r.data.get("user") or "") != asker for r in answers):
        if not thread.replies:
            return "its replies are not in the export"
        return "no reply from anyone but the asker" if answers else "no reply with text"
    asked = decode(str(question.get("text") or ""), users=users, channels=channels)
    decoded = [decode(str(r.data.get("text") or ""), users=users, channels=channels) for r in answers]
    description = _cap("\n".join(d.text.strip() for d in decoded), MAX_DESCRIPTION)
    title = _title(asked.text, asked.urls)
    if not title:
        return "the question has no text"
    return {
        "title": title,
        "description": description,
        "url": _first_link(u for d in decoded for u in d.urls) or _first_link(asked.urls),
        "tags": f"slack, {thread.channel_name}",
        "language": dominant_language(f"{title}\n{description}") or "",
    }


def _import_threads(session: Session, *, community_id: int, threads: Sequence[_Thread], bots: set[str],
                    users: Mapping[str, str], channels: Mapping[str, str], report: SlackExportReport) -> None:
    stored = session.exec(select(Resource).where(Resource.community_id == community_id,
                                                 col(Resource.external_key).startswith("slack:"))).all()
    by_key = {r.external_key: r for r in stored}
    now = utcnow()
    estimated: set[str] = set()
    seen: set[str] = set()
    for thread in threads:
        item = thread.item
        values = _thread_values(thread, bots=bots, users=users, channels=channels)
        if isinstance(values, str):
            report.skip(report.threads, item.file, item.line, values)
            continue
        key, exact = _thread_key(thread)
        if not exact and thread.channel_id not in estimated:
            estimated.add(thread.channel_id)
            report.warn(item.file, item.line,
                        f"#{thread.channel_name} has no message timestamps (anonymised export?): replies "
                        "were tied to questions by author order and threads keyed by client_msg_id")
        if key in seen:
            report.skip(report.threads, item.file, item.line, f"same key {key} as an earlier thread")
            continue
        seen.add(key)
        resource = by_key.get(key)
        if resource is None:
            session.add(Resource(community_id=community_id, external_key=key, source=SOURCE, created_at=now,
                                 updated_at=now, **values))
            report.threads.created += 1
            continue
        changed = {k: v for k, v in values.items() if getattr(resource, k) != v}
        if not changed:
            report.threads.unchanged += 1
            continue
        for attr, value in changed.items():
            setattr(resource, attr, value)
        resource.updated_at = now
        session.add(resource)
        report.threads.updated += 1
    session.flush()


class _NoProgress:
    def update(self, n: int) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def import_slack_export(
    session: Session, *, community: Community, path: Path, consent: bool = False, progress: bool = False
) -> SlackExportReport:
    """Import the members and Q&A threads of the unpacked Slack export at ``path`` into ``community``
    (see the module docstring). Re-importing updates what changed and creates no duplicates; nothing is
    committed here (the caller's session commits).

    Args:
        consent: whether members this import creates may be suggested to others
            (``Member.consent_suggest``); default not, as they never agreed. Stored members keep theirs.
        progress: show a progress bar on stderr for exports of many day files.

    Raises:
        ImportFormatError: ``path`` is not an unpacked export (see :func:`check_export_dir`) or its
            ``users.json`` / ``channels.json`` cannot be read.
    """
    root = check_export_dir(path)
    assert community.id is not None
    report = SlackExportReport(source=root.resolve().name)
    users = _items(root, root / "users.json", report, required=True)
    bots = {str(u.data.get("id")) for u in users if _is_bot(u.data)} | {"USLACKBOT"}
    names = {str(u.data.get("id")): user_display_name(u.data) for u in users if u.data.get("id")}
    _import_members(session, community_id=community.id, users=users, consent=consent, report=report)

    listed: list[_Item] = []
    for name in ("channels.json", "groups.json"):
        if (root / name).is_file():
            listed += _items(root, root / name, report, required=True)
    if not (root / "channels.json").is_file():
        report.warn("channels.json", 1, "no channels.json: no Q&A threads were imported")
    channel_names = {str(c.data.get("id")): str(c.data.get("name") or c.data.get("id")) for c in listed
                     if c.data.get("id")}
    folders = [(cid, cname, root / cname) for cid, cname in channel_names.items() if (root / cname).is_dir()]
    report.channels, report.channels_with_messages = len(channel_names), len(folders)
    files = sum(1 for _, _, folder in folders for _ in folder.glob("*.json"))
    bar: Any = _NoProgress()
    if progress and files > _PROGRESS_MIN_FILES:
        from tqdm import tqdm

        bar = tqdm(total=files, desc="Reading the Slack export", unit="file", file=sys.stderr, leave=False)
    threads: list[_Thread] = []
    try:
        for cid, cname, folder in folders:
            threads += _read_channel(root, folder, cid, cname, bots, report, bar)
    finally:
        bar.close()
    _import_threads(session, community_id=community.id, threads=threads, bots=bots, users=names,
                    channels=channel_names, report=report)
    return report
