"""``/resource add "TITLE" URL [--tags a,b] [--desc TEXT]`` and ``/resource list [QUERY]`` (``/资源``).

The title is everything before the URL (quotes optional). ``list`` without a query shows the latest
resources; with one it asks the matcher (replies keep only matches above the community's threshold) or,
when no matcher is wired, filters titles, descriptions and tags by substring.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, or_, select

from bot.commands.context import CommandContext
from bot.commands.parsing import Flag, join_tokens, parse_args
from bot.commands.replies import say
from bot.errors import UsageError
from bot.i18n import tr
from bot.importers.links import LINK, normalise_link
from bot.language import detect_language
from bot.messages import Match, Reply
from bot.models import Resource

LATEST_LIMIT = 10
SEARCH_TOP_K = 5
MAX_TITLE_CHARS = 300

ADD_FLAGS = (Flag("tags", ("tag", "标签")), Flag("desc", ("description", "描述", "说明")))


def add_resource(ctx: CommandContext, args: str) -> list[Reply]:
    """``/resource add "TITLE" URL [--tags a,b] [--desc TEXT]``: stores a resource shared by ``ctx.member``.

    A URL already shared in this community is not stored twice; the reply points at the existing one.
    """
    lang = ctx.language
    parsed = parse_args(args, flags=ADD_FLAGS, language=lang)
    words = parsed.positionals
    at = next((i for i, t in enumerate(words) if not t.quoted and LINK.fullmatch(t.text)), None)
    if at is None:
        raise UsageError(tr(lang, "The resource needs a link (https://...).", "资源需要一个链接（https://...）。"))
    if at + 1 < len(words):
        extra = join_tokens(words[at + 1:])
        raise UsageError(tr(lang, f"Unexpected {extra!r} after the link; use --desc for a description.",
                            f"链接后面多了「{extra}」；描述请用 --desc。"))
    title = join_tokens(words[:at])
    if not title or len(title) > MAX_TITLE_CHARS:
        raise UsageError(tr(lang, f"The resource needs a title (at most {MAX_TITLE_CHARS} characters).",
                            f"资源需要一个标题（最多 {MAX_TITLE_CHARS} 个字符）。"))
    url = normalise_link(words[at].text)
    assert url is not None  # the word matched LINK
    existing = ctx.session.exec(
        select(Resource).where(Resource.community_id == ctx.community.id, Resource.url == url)
    ).first()
    if existing is not None:
        return [say(ctx, f"That link is already shared as #{existing.id} {existing.title}.",
                    f"这个链接已经分享过了：#{existing.id} {existing.title}。")]
    description = parsed.value("desc") or ""
    tag_text = (parsed.value("tags") or "").replace("，", ",")
    tags = ",".join(t.strip() for t in tag_text.split(",") if t.strip())
    assert ctx.community.id is not None
    resource = Resource(
        community_id=ctx.community.id, title=title, url=url, description=description, tags=tags,
        language=detect_language(f"{title} {description}") or ctx.language, source="command",
        added_by_member_id=ctx.member.id, created_at=ctx.now, updated_at=ctx.now,
    )
    ctx.session.add(resource)
    ctx.session.flush()
    line = _line(resource.id, resource.title, resource.url)
    return [say(ctx, f"Resource added: {line}", f"资源已添加：{line}")]


def list_resources(ctx: CommandContext, args: str) -> list[Reply]:
    """``/resource list [QUERY]``: the latest resources, or the best matches for ``QUERY``."""
    query = join_tokens(parse_args(args, language=ctx.language).positionals)
    if not query:
        rows = ctx.session.exec(
            select(Resource).where(Resource.community_id == ctx.community.id)
            .order_by(col(Resource.created_at).desc(), col(Resource.id).desc()).limit(LATEST_LIMIT)
        ).all()
        if not rows:
            return [say(ctx, "No resources yet. Share one with /resource add \"Title\" https://...",
                        "还没有资源。可以用 /资源 添加 \"标题\" https://... 分享一个。")]
        lines = [_line(r.id, r.title, r.url) for r in rows]
        return [say(ctx, "\n".join(["Latest resources:", *lines]), "\n".join(["最新资源：", *lines]))]
    if ctx.matcher is not None:
        assert ctx.community.id is not None
        found = ctx.matcher.search(community_id=ctx.community.id, query=query, kinds=["resource"],
                                   top_k=SEARCH_TOP_K)
        matches = tuple(m for m in found if not m.below_threshold)
    else:
        matches = _substring_matches(ctx, query)
    if not matches:
        return [say(ctx, f"No resource matches {query!r}.", f"没有找到与「{query}」相关的资源。")]
    lines = [_line(m.id, m.title, m.url) for m in matches]
    return [say(ctx, "\n".join([f"Resources for {query!r}:", *lines]),
                "\n".join([f"与「{query}」相关的资源：", *lines]), matches=matches)]


def _substring_matches(ctx: CommandContext, query: str) -> tuple[Match, ...]:
    """Resources whose title, description or tags contain ``query`` (case-insensitive), newest first."""
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    needle = f"%{escaped}%"
    rows = ctx.session.exec(
        select(Resource).where(
            Resource.community_id == ctx.community.id,
            or_(*(sa.func.lower(c).like(needle, escape="\\")
                  for c in (col(Resource.title), col(Resource.description), col(Resource.tags)))),
        ).order_by(col(Resource.created_at).desc(), col(Resource.id).desc()).limit(LATEST_LIMIT)
    ).all()
    return tuple(Match(kind="resource", id=r.id, title=r.title, score=1.0, why=tr(ctx.language, "text match",
                                                                                   "文字匹配"), url=r.url)
                 for r in rows if r.id is not None)


def _line(resource_id: int | None, title: str, url: str) -> str:
    return f"#{resource_id} {title} — {url}" if url else f"#{resource_id} {title}"
