"""Which column of an import file fills which field: the field specs, auto-detection and ``--map``.

A mapping sends each field to one or more columns (``bio=short_description+long_description``; the values
are joined). Without ``--map`` the importer recognises common column names, English and Chinese, and those
of the public directories organisers start from (YC companies, Chinese indie-maker lists, credit lists,
meetup feeds, conference lists). ``--map`` entries override the guess field by field; ``--map skills=``
(empty) leaves a field out. The key (``--key`` or ``--map key=...``) names the columns that identify a
row across re-imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.errors import ImportFormatError, UsageError

FieldKind = Literal["text", "list", "when", "int", "url"]

#: The largest capacity of an event (also the ``--capacity`` limit of ``/event create``).
MAX_CAPACITY = 100_000


@dataclass(frozen=True)
class FieldSpec:
    """One importable field.

    Attributes:
        name: the ``--map`` name (``name``, ``bio``, ``start``).
        attr: the model attribute it fills (``display_name``, ``bio``, ``starts_at``).
        aliases: column-name groups recognised without ``--map``, best first; a group of several columns
            (``("short_description", "long_description")``) is used when all of them exist. Names are
            compared after :func:`normalise_column` (case, spaces, dashes and camelCase do not matter).
        kind: ``text`` (parts joined with ``joiner``), ``list`` (items joined with ", ", duplicates
            dropped), ``when`` (a date/time, parts joined with a space: ``date+time``), ``int``, ``url``
            (the first part that is a link by :func:`bot.importers.links.normalise_link`; the others are
            left out with a warning).
        max_length: the column's limit; a longer value makes the row skipped.
        maximum: for ``int``: the largest value; a larger or negative one makes the row skipped, and 0
            means none (no limit).
        required: the import cannot run without a column for it.
        unite: when two rows of a file share a key, their items are united (tags, skills); otherwise the
            first non-empty value is kept.
    """

    name: str
    attr: str
    aliases: tuple[tuple[str, ...], ...]
    kind: FieldKind = "text"
    joiner: str = "\n"
    max_length: int | None = None
    maximum: int | None = None
    required: bool = False
    unite: bool = False


@dataclass(frozen=True)
class TargetSpec:
    """What an import fills: ``kind`` (``members``), the singular ``entity`` used in messages, the
    fields, the column names recognised as a row id, and the fields that key a row without an id."""

    kind: str
    entity: str
    fields: tuple[FieldSpec, ...]
    key_aliases: tuple[str, ...]
    fallback_key: tuple[str, ...]

    def field(self, name: str) -> FieldSpec | None:
        """The field called ``name`` (its ``--map`` name or its attribute name), if any."""
        wanted = normalise_column(name)
        return next((f for f in self.fields if wanted in (f.name, normalise_column(f.attr))), None)

    @property
    def map_names(self) -> list[str]:
        """Names accepted on the left of ``--map``."""
        return [f.name for f in self.fields] + ["key"]


@dataclass(frozen=True)
class ColumnMapping:
    """The mapping an import uses: field name -> columns of the file (in order), and the key columns
    (empty: rows are keyed by the spec's fallback fields).

    ``alternatives`` are, for auto-detected fields only, other recognised column groups of the file, used
    in order for a row whose chosen columns are empty (JSON objects that say ``title`` in one item and
    ``name`` in the next)."""

    fields: dict[str, tuple[str, ...]]
    key_columns: tuple[str, ...] = ()
    unused_columns: tuple[str, ...] = field(default=())
    alternatives: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)

    def describe(self) -> dict[str, str]:
        """``{field: "col+col"}``, the shape shown to users and in ``--json``."""
        return {name: "+".join(cols) for name, cols in self.fields.items()}

    def describe_alternatives(self) -> dict[str, list[str]]:
        """``{field: ["col", "col+col"]}`` for fields with alternatives."""
        return {name: ["+".join(g) for g in groups] for name, groups in self.alternatives.items() if groups}


def _a(*groups: str) -> tuple[tuple[str, ...], ...]:
    """Alias groups from strings: ``"a+b"`` is one group of two columns."""
    return tuple(tuple(g.split("+")) for g in groups)


_URL = _a("url", "website", "homepage", "link", "site", "web", "网址", "链接", "主页", "网站")
_LOCATION = _a("location+country", "city+country", "location", "city", "place", "country", "region",
               "城市", "地点", "所在地", "地区")

MEMBER_SPEC = TargetSpec(
    kind="members",
    entity="member",
    fields=(
        FieldSpec("name", "display_name", _a(
            "display_name", "name", "full_name", "company_name", "company", "startup", "maker", "founder",
            "founder_name", "username", "user", "nickname", "real_name",
            "姓名", "名字", "昵称", "名称", "称呼",
        ), max_length=200, required=True, joiner=" "),
        FieldSpec("bio", "bio", _a(
            "bio", "short_description+long_description", "product+pitch", "about", "description", "summary",
            "one_liner", "tagline", "pitch", "intro", "introduction", "profile", "简介", "个人简介", "介绍",
            "自我介绍",
        )),
        FieldSpec("skills", "skills", _a("skills", "expertise", "tags", "industries", "industry", "topics",
                                         "技能", "擅长", "专长", "标签", "行业"), kind="list", unite=True),
        FieldSpec("offers", "offers", _a("offers", "can_help_with", "can_offer", "offer", "能提供", "提供",
                                         "可以提供"), joiner="; "),
        FieldSpec("needs", "needs", _a("needs", "looking_for", "asks", "need", "需要", "需求", "在找"),
                  joiner="; "),
        FieldSpec("location", "location", _LOCATION, kind="list"),
        FieldSpec("languages", "languages", _a("languages", "language", "locales", "语言"),
                  kind="list", unite=True),
        FieldSpec("timezone", "timezone", _a("timezone", "time_zone", "tz", "时区"), joiner=" "),
        FieldSpec("url", "url", _URL, kind="url"),
    ),
    key_aliases=("id", "uid", "member_id", "company_id", "user_id", "external_id", "key", "编号"),
    fallback_key=("display_name", "url"),
)

RESOURCE_SPEC = TargetSpec(
    kind="resources",
    entity="resource",
    fields=(
        FieldSpec("title", "title", _a("title", "name", "resource", "program", "programme", "tool", "标题",
                                       "名称", "名字", "资源", "工具"),
                  max_length=300, required=True, joiner=" "),
        FieldSpec("url", "url", _URL, kind="url"),
        FieldSpec("description", "description", _a(
            "description", "desc", "summary", "about", "details", "notes",
            "short_description+long_description",
            "描述", "说明", "简介", "介绍", "备注",
        )),
        FieldSpec("tags", "tags", _a("tags", "category", "categories", "keywords", "topics", "type", "标签",
                                     "分类", "类别", "类型"), kind="list", unite=True),
        FieldSpec("language", "language", _a("language", "lang", "locale", "语言"), joiner=" "),
    ),
    key_aliases=("id", "uid", "resource_id", "external_id", "key", "编号"),
    fallback_key=("title", "url"),
)

EVENT_SPEC = TargetSpec(
    kind="events",
    entity="event",
    fields=(
        FieldSpec("title", "title", _a("title", "summary", "name", "event", "event_name", "标题", "活动",
                                       "活动名称", "名称"), max_length=300, required=True, joiner=" "),
        FieldSpec("description", "description", _a("description", "desc", "details", "about", "描述", "说明",
                                                   "简介", "介绍")),
        FieldSpec("start", "starts_at", _a(
            "starts_at", "start_date+start_time", "date+time", "start_date", "start", "dtstart", "start_time",
            "begin", "date", "when", "开始时间", "开始", "日期+时间", "日期", "时间",
        ), kind="when", required=True),
        FieldSpec("end", "ends_at", _a("ends_at", "end_date+end_time", "end_date", "end", "dtend", "end_time",
                                       "finish", "结束时间", "结束"), kind="when"),
        FieldSpec("place", "place", _a("location", "place", "venue", "address", "city+country", "city",
                                       "where", "地点", "地址", "场地", "城市"), kind="list"),
        FieldSpec("link", "link", _a("url", "link", "website", "event_url", "registration", "链接", "网址",
                                     "报名链接"), kind="url"),
        FieldSpec("capacity", "capacity", _a("capacity", "max_attendees", "seats", "limit", "人数", "名额"),
                  kind="int", maximum=MAX_CAPACITY),
        FieldSpec("status", "status", _a("status", "状态"), joiner=" "),
    ),
    key_aliases=("uid", "id", "event_id", "external_id", "key", "编号"),
    fallback_key=("title", "starts_at"),
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def normalise_column(name: str) -> str:
    """The form column names are compared in: ``"Start Date"``, ``"start-date"``, ``"startDate"`` ->
    ``"start_date"``."""
    name = _CAMEL.sub("_", name.strip())
    return re.sub(r"[\s\-./]+", "_", name).strip("_").casefold()


def parse_map_options(options: Sequence[str] | None) -> dict[str, str]:
    """Parse ``--map`` values (``["name=company_name", "bio=a+b"]``) into ``{"name": "company_name", ...}``.

    Raises:
        UsageError: an entry without ``=`` or with an empty field name, or a field given twice.
    """
    mapping: dict[str, str] = {}
    for option in options or ():
        name, sep, columns = option.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"Bad --map {option!r}: write FIELD=COLUMN, e.g. --map name=company_name "
                             "(combine columns with +: --map bio=short_description+long_description).")
        if name in mapping:
            raise UsageError(f"--map {name}=... is given twice.")
        mapping[name] = columns.strip()
    return mapping


def _split_columns(value: str | Sequence[str], sep: str) -> tuple[str, ...]:
    parts = value.split(sep) if isinstance(value, str) else list(value)
    return tuple(p.strip() for p in parts if p.strip())


class _ColumnIndex:
    """Finds columns of a file by exact or normalised name."""

    def __init__(self, columns: Sequence[str], file_label: str) -> None:
        self.columns = list(columns)
        self.file_label = file_label
        self.by_norm: dict[str, str] = {}
        for column in self.columns:
            self.by_norm.setdefault(normalise_column(column), column)

    def find(self, name: str) -> str | None:
        return name if name in self.columns else self.by_norm.get(normalise_column(name))

    def require(self, name: str, option: str) -> str:
        column = self.find(name)
        if column is None:
            raise ImportFormatError(
                f"{option}: {self.file_label} has no column {name!r}. Available columns: {self.available}."
            )
        return column

    @property
    def available(self) -> str:
        return ", ".join(self.columns) or "(none)"


def resolve_mapping(
    spec: TargetSpec,
    *,
    columns: Sequence[str],
    explicit: Mapping[str, str | Sequence[str]] | None = None,
    key: str | Sequence[str] | None = None,
    file_label: str = "the file",
) -> ColumnMapping:
    """The mapping for a file with ``columns``: the ``explicit`` entries, then auto-detected columns for
    the other fields (a column already used is not reused), then the key.

    Args:
        spec: what is imported (:data:`MEMBER_SPEC`, :data:`RESOURCE_SPEC`, :data:`EVENT_SPEC`).
        columns: the file's columns, in order.
        explicit: ``{field: "col" | "col+col" | [cols]}``; an empty value leaves the field out; the
            entry ``key`` names the key columns (like ``key``).
        key: key columns, ``"col"``, ``"col,col"`` or a list; overrides ``explicit["key"]``.
        file_label: how messages name the file.

    Raises:
        UsageError: an unknown field name, or a required field left out.
        ImportFormatError: a named column is not in the file, or no column could be found for a required
            field (the message names the ``--map`` to pass and lists the available columns).
    """
    index = _ColumnIndex(columns, file_label)
    explicit = dict(explicit or {})
    key_option = explicit.pop("key", None)
    chosen: dict[str, tuple[str, ...]] = {}
    disabled: set[str] = set()
    for name, value in explicit.items():
        spec_field = spec.field(name)
        if spec_field is None:
            raise UsageError(f"Unknown field {name!r} in --map. Fields of {spec.kind}: "
                             f"{', '.join(spec.map_names)}.")
        cols = _split_columns(value, "+")
        if not cols:
            if spec_field.required:
                raise UsageError(f"--map {spec_field.name}= cannot be empty: every {spec.entity} needs it.")
            disabled.add(spec_field.name)
            continue
        shown = value if isinstance(value, str) else "+".join(value)
        chosen[spec_field.name] = tuple(index.require(c, f"--map {spec_field.name}={shown}") for c in cols)
    used = {c for cols in chosen.values() for c in cols}
    detected: dict[str, list[tuple[str, ...]]] = {}
    for spec_field in spec.fields:
        if spec_field.name in chosen or spec_field.name in disabled:
            continue
        groups = [tuple(c for c in found if c) for group in spec_field.aliases
                  if all(found := [index.find(alias) for alias in group])]
        primary = next((g for g in groups if not used.intersection(g)), None)
        if primary is not None:
            chosen[spec_field.name] = primary
            used.update(primary)
            detected[spec_field.name] = [g for g in groups if g != primary]
    alternatives: dict[str, tuple[tuple[str, ...], ...]] = {}
    for name, groups in detected.items():
        others = {c for other, cols in chosen.items() if other != name for c in cols}
        keep: list[tuple[str, ...]] = []
        for group in groups:  # a group inside an earlier one adds nothing: it is empty when that one is
            inside_earlier = any(set(group) <= set(g) for g in [chosen[name], *keep])
            if not others.intersection(group) and not inside_earlier:
                keep.append(group)
        if keep:
            alternatives[name] = tuple(keep)
            used.update(c for g in keep for c in g)
    missing = [f for f in spec.fields if f.required and f.name not in chosen]
    if missing:
        wanted = " ".join(f"--map {f.name}=COLUMN" for f in missing)
        what = " and ".join(f"the {spec.entity}'s {f.name}" for f in missing)
        raise ImportFormatError(
            f"Cannot tell which column of {file_label} holds {what}. Pass {wanted} "
            f"(combine columns with +). Available columns: {index.available}."
        )
    key_value = key if key is not None else key_option
    if key_value is not None and _split_columns(key_value, ","):
        shown = key_value if isinstance(key_value, str) else ",".join(key_value)
        option = f"--key {shown}" if key is not None else f"--map key={shown}"
        key_columns = tuple(index.require(c, option) for c in _split_columns(key_value, ","))
    else:
        key_columns = next(((c,) for alias in spec.key_aliases if (c := index.find(alias))), ())
    ordered = {f.name: chosen[f.name] for f in spec.fields if f.name in chosen}
    used.update(key_columns)
    unused = tuple(c for c in columns if c not in used)
    return ColumnMapping(fields=ordered, key_columns=key_columns, unused_columns=unused,
                         alternatives=alternatives)
