"""Tokenising and flag parsing of commands as people really type them (case S5 and its cousins)."""

from __future__ import annotations

import pytest

from bot.commands.parsing import (
    MAX_DB_ID,
    Flag,
    Token,
    flag_name,
    normalise_quotes,
    parse_args,
    parse_id,
    parse_positive_int,
    tokenize,
)
from bot.errors import UsageError

FLAGS = (Flag("where", ("地点",)), Flag("capacity"), Flag("past", takes_value=False))


def texts(tokens: list[Token]) -> list[str]:
    return [t.text for t in tokens]


@pytest.mark.parametrize("typed", ["“Spring Meetup”", "«Spring Meetup»", "「Spring Meetup」",
                                   "『Spring Meetup』", "„Spring Meetup“", "＂Spring Meetup＂"])
def test_typographic_double_quotes_become_straight(typed: str) -> None:
    assert normalise_quotes(typed) == '"Spring Meetup"'
    assert tokenize(typed) == [Token("Spring Meetup", quoted=True)]


def test_typographic_single_quotes_become_straight() -> None:
    assert normalise_quotes("‘Room 3’ Bob’s") == "'Room 3' Bob's"
    assert tokenize("‘Room 3’ Bob’s") == [Token("Room 3", quoted=True), Token("Bob's")]


def test_apostrophes_inside_words_do_not_open_or_close_quotes() -> None:
    assert texts(tokenize("\"Bob's Q&A night\" 2027-05-10")) == ["Bob's Q&A night", "2027-05-10"]
    assert texts(tokenize("Bob's Q&A night")) == ["Bob's", "Q&A", "night"]
    assert tokenize("'Bob's night' x") == [Token("Bob's night", quoted=True), Token("x")]
    assert texts(tokenize("O'Brien's talk")) == ["O'Brien's", "talk"]


def test_closing_quote_ends_token_without_a_space() -> None:
    assert tokenize("「周五聚会」下周五晚上7点") == [Token("周五聚会", quoted=True), Token("下周五晚上7点")]


@pytest.mark.parametrize("typed", ['"Unclosed 2027-06-01', "“Unclosed 2027-06-01", "'Unclosed", "x \"y"])
def test_unbalanced_quote_is_a_usage_error(typed: str) -> None:
    with pytest.raises(UsageError, match="not closed"):
        tokenize(typed)


def test_empty_quotes_give_an_empty_token() -> None:
    assert tokenize('"" x') == [Token("", quoted=True), Token("x")]


@pytest.mark.parametrize("word", ["--where", "—where", "–where", "——where", "－－where"])
def test_dash_variants_spell_the_same_flag(word: str) -> None:
    assert flag_name(Token(word)) == "where"
    assert parse_args(f"1 {word} Picnic-Lawn", flags=FLAGS).options == {"where": "Picnic-Lawn"}


def test_plain_dashes_and_quoted_flags_are_words() -> None:
    assert flag_name(Token("—")) is None
    assert flag_name(Token("--")) is None
    assert flag_name(Token("-5")) is None
    assert flag_name(Token("--where", quoted=True)) is None


def test_multi_word_values_run_to_the_next_flag() -> None:
    parsed = parse_args('"Spring" 2027-05-10 --where Room 3, 2nd floor --capacity 20 --past', flags=FLAGS)
    assert texts(parsed.positionals) == ["Spring", "2027-05-10"]
    assert parsed.options == {"where": "Room 3, 2nd floor", "capacity": "20", "past": True}
    assert parsed.value("where") == "Room 3, 2nd floor"
    assert parsed.value("past") is None


def test_inline_values_aliases_and_case() -> None:
    assert parse_args("--WHERE=Room --地点 深圳", flags=FLAGS).options == {"where": "深圳"}
    assert parse_args("--where='Room 3'", flags=FLAGS).options == {"where": "Room 3"}
    parsed = parse_args("--where=“Room 3” --capacity=5", flags=FLAGS)
    assert parsed.options == {"where": "Room 3", "capacity": "5"}


def test_switch_is_followed_by_positionals() -> None:
    parsed = parse_args("--past extra", flags=FLAGS)
    assert parsed.options == {"past": True}
    assert texts(parsed.positionals) == ["extra"]


def test_unknown_flag_is_a_usage_error_in_the_right_language() -> None:
    with pytest.raises(UsageError, match="Unknown option --colour"):
        parse_args("x --colour red", flags=FLAGS)
    with pytest.raises(UsageError, match="未知选项"):
        parse_args("x —colour red", flags=FLAGS, language="zh")


def test_flag_without_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--where needs a value"):
        parse_args("x --where --capacity 3", flags=FLAGS)


@pytest.mark.parametrize(("text", "expected"), [("3", 3), ("#12", 12), ("１２", 12), (" 7 ", 7)])
def test_positive_int(text: str, expected: int) -> None:
    assert parse_positive_int(text, what="ID") == expected


@pytest.mark.parametrize("text", ["0", "-1", "ten", "2.5", ""])
def test_positive_int_refuses_others(text: str) -> None:
    with pytest.raises(UsageError, match="Capacity must be a whole number"):
        parse_positive_int(text, what="Capacity")


@pytest.mark.parametrize("text", ["99999999999999999999", "9223372036854775808", "#１" + "0" * 25,
                                  "9" * 5000])
def test_id_beyond_the_database_range_is_no_id(text: str) -> None:
    assert parse_id(text, what="The event ID") is None  # "there is no #…", never an OverflowError


@pytest.mark.parametrize(("text", "expected"),
                         [("1", 1), ("#42", 42), ("９", 9), (str(MAX_DB_ID), MAX_DB_ID)])
def test_id_within_the_database_range(text: str, expected: int) -> None:
    assert parse_id(text, what="The event ID") == expected


@pytest.mark.parametrize("text", ["0", "-3", "1_000", "1e3", "+", "#"])
def test_id_that_is_not_a_whole_number_above_zero(text: str) -> None:
    with pytest.raises(UsageError, match="The event ID must be a whole number above zero"):
        parse_id(text, what="The event ID")


@pytest.mark.parametrize("text", ["100001", "99999999999999999999", "9" * 5000])
def test_positive_int_above_its_maximum_names_the_range(text: str) -> None:
    with pytest.raises(UsageError, match="Capacity must be between 1 and 100000"):
        parse_positive_int(text, what="Capacity", maximum=100_000)
    with pytest.raises(UsageError, match="人数上限必须在 1 到 100000 之间"):
        parse_positive_int(text, what="人数上限", language="zh", maximum=100_000)


def test_positive_int_at_its_maximum() -> None:
    assert parse_positive_int("100000", what="Capacity", maximum=100_000) == 100_000
