"""Tokenising command arguments and reading their ``--flags``, as people really type them.

Chat clients "improve" what people type: straight quotes become “typographic” ones, ``--`` becomes an em
dash, and Chinese keyboards produce 「corner brackets」. This module undoes that before anything is parsed
or stored, so no curly quote ever reaches the database:

* :func:`normalise_quotes` maps every typographic double quote (“ ” „ « » 「 」 『 』 ＂) to ``"`` and every
  typographic single quote (‘ ’ ‚ ‹ › ＇) to ``'``.
* :func:`tokenize` splits on whitespace; a quote opens a quoted token only at the *start* of a token, so the
  apostrophe in ``Bob's`` never opens one, and a ``'`` closes only when no letter or digit follows it
  (``'Bob's night'`` is one token). An unclosed quote raises :class:`~bot.errors.UsageError`.
* :func:`parse_args` reads flags: ``--where``, ``—where`` (em dash), ``–where`` (en dash), ``——where``
  (a Chinese keyboard's dash), ``--where=VALUE`` and ``--where="A B"`` are the same flag; a value runs
  over several words up to the next flag (``--where Room 3 --capacity 20``); an unknown flag raises
  ``UsageError``.

``shlex`` is not used: it treats every apostrophe as a quote and backslashes as escapes, which is wrong for
chat text, and the rules above are shorter than working around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.errors import UsageError
from bot.i18n import tr

_QUOTES = str.maketrans({
    "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "「": '"', "」": '"', "『": '"', "』": '"',
    "＂": '"', "〝": '"', "〞": '"',
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "‹": "'", "›": "'", "＇": "'",
})

#: Prefixes that introduce a flag, longest first: ASCII, doubled em dash, full-width, em dash, en dash.
_FLAG_PREFIXES = ("--", "——", "－－", "—", "–")


def normalise_quotes(text: str) -> str:
    """``text`` with every typographic quote replaced by its straight ASCII form (``"`` or ``'``)."""
    return text.translate(_QUOTES)


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a command, or one quoted phrase (``quoted=True``, quotes removed, never a flag)."""

    text: str
    quoted: bool = False


def tokenize(text: str, *, language: str = "en") -> list[Token]:
    """Split ``text`` into tokens after :func:`normalise_quotes`.

    Raises:
        UsageError: a quote opens a token and is never closed (message in ``language``).
    """
    text = normalise_quotes(text)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] in "\"'":
            end = _closing_quote(text, i)
            if end < 0:
                raise UsageError(tr(language, f"A quote is not closed: {text[i:].strip()[:40]}",
                                    f"引号没有闭合：{text[i:].strip()[:40]}"))
            tokens.append(Token(text[i + 1:end], quoted=True))
            i = end + 1
            continue
        start = i
        while i < n and not text[i].isspace():
            i += 1
        tokens.append(Token(text[start:i]))
    return tokens


def _closing_quote(text: str, start: int) -> int:
    """Index of the quote closing the one at ``start``, or -1; a ``'`` before a letter is an apostrophe."""
    quote = text[start]
    i = start + 1
    while True:
        i = text.find(quote, i)
        if i < 0:
            return -1
        if quote == '"' or i + 1 >= len(text) or not text[i + 1].isalnum():
            return i
        i += 1


@dataclass(frozen=True, slots=True)
class Flag:
    """A ``--flag`` a command accepts.

    Attributes:
        name: canonical name, the key in :attr:`ParsedArgs.options` (``where``).
        aliases: other spellings (``place``, ``地点``), matched case-insensitively.
        takes_value: ``False`` for a switch such as ``--past`` (its option value is ``True``).
    """

    name: str
    aliases: tuple[str, ...] = ()
    takes_value: bool = True


@dataclass(slots=True)
class ParsedArgs:
    """Positional tokens (in order) and flag values (``str`` for value flags, ``True`` for switches)."""

    positionals: list[Token] = field(default_factory=list)
    options: dict[str, str | bool] = field(default_factory=dict)

    def value(self, name: str) -> str | None:
        """The value given for value flag ``name``, or ``None`` when it was not given."""
        found = self.options.get(name)
        return found if isinstance(found, str) else None


def flag_name(token: Token) -> str | None:
    """The flag name ``token`` spells (``--where``, ``—where`` -> ``where``), or ``None`` for a plain word."""
    if token.quoted:
        return None
    for prefix in _FLAG_PREFIXES:
        if token.text.startswith(prefix):
            rest = token.text[len(prefix):]
            return rest if rest[:1].isalpha() else None
    return None


def parse_args(text: str, *, flags: Sequence[Flag] = (), language: str = "en") -> ParsedArgs:
    """Tokenise ``text`` and sort the tokens into positionals and flag values.

    A value flag takes every following token up to the next flag, joined by single spaces; a switch takes
    none. Tokens that follow a switch are positionals again.

    Raises:
        UsageError: unclosed quote, unknown flag, or a value flag without a value.
    """
    by_name = {spelling.lower(): f for f in flags for spelling in (f.name, *f.aliases)}
    parsed = ParsedArgs()
    current: Flag | None = None
    words: list[str] = []

    def finish() -> None:
        if current is None:
            return
        value = " ".join(words).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":  # --where="Room 3"
            value = value[1:-1].strip()
        if not value:
            flag = f"--{current.name}"
            raise UsageError(tr(language, f"{flag} needs a value.", f"{flag} 后面需要一个值。"))
        parsed.options[current.name] = value

    for token in tokenize(text, language=language):
        name = flag_name(token)
        if name is None:
            if current is not None:
                words.append(token.text)
            else:
                parsed.positionals.append(token)
            continue
        finish()
        current, words = None, []
        name, _, inline = name.partition("=")
        spec = by_name.get(name.lower())
        if spec is None:
            raise UsageError(tr(language, f"Unknown option --{name}.", f"未知选项 --{name}。"))
        if not spec.takes_value:
            parsed.options[spec.name] = True
            continue
        current, words = spec, [inline] if inline else []
    finish()
    return parsed


def join_tokens(tokens: Sequence[Token]) -> str:
    """The tokens' texts joined by single spaces and stripped."""
    return " ".join(t.text for t in tokens).strip()


#: The largest id a database row can have: ids are INTEGER columns, a signed 32-bit integer in PostgreSQL
#: (SQLite's are 64-bit; a larger number there is no row's id either, since ids are allocated from 1).
MAX_DB_ID = 2**31 - 1


def _whole_number(text: str) -> int | None:
    """``text`` as an integer (``#3``, full-width digits and a sign accepted), ``None`` when it is not one.

    Only digits count (``int`` would also take ``1_000``); a number too long for ``int`` to convert is
    returned all the same, as a number above every limit.
    """
    cleaned = text.strip().lstrip("#＃").strip()
    sign = -1 if cleaned[:1] in ("-", "－") else 1
    digits = cleaned[1:] if cleaned[:1] in ("-", "－", "+", "＋") else cleaned
    if not digits or not digits.isdecimal():
        return None
    try:
        return sign * int(digits)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        return sign * (MAX_DB_ID + 1)


def parse_positive_int(text: str, *, what: str, language: str = "en", maximum: int | None = None) -> int:
    """``text`` as a positive integer (``#3`` and full-width digits accepted), at most ``maximum``.

    Raises:
        UsageError: not a whole number above zero, or above ``maximum`` (then the message gives the range
            ``1..maximum``); the message names ``what``.
    """
    value = _whole_number(text)
    if value is None or value <= 0:
        raise UsageError(tr(language, f"{what} must be a whole number above zero, not {text!r}.",
                            f"{what}必须是大于零的整数，而不是「{text}」。"))
    if maximum is not None and value > maximum:
        raise UsageError(tr(language, f"{what} must be between 1 and {maximum}, not {text.strip()[:30]!r}.",
                            f"{what}必须在 1 到 {maximum} 之间，而不是「{text.strip()[:30]}」。"))
    return value


def parse_id(text: str, *, what: str, language: str = "en") -> int | None:
    """``text`` as a row id (``3``, ``#3``); ``None`` when it is a whole number too large to be any row's id
    (above :data:`MAX_DB_ID`), so callers answer "there is no #…" instead of asking the database, which
    cannot even hold such a number.

    Raises:
        UsageError: not a whole number above zero.
    """
    value = parse_positive_int(text, what=what, language=language)
    return value if value <= MAX_DB_ID else None
