"""Documents: the text embedded per kind, the display parts, and the explanation of a match."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bot.events import event_when
from bot.models import Community, Event, Member, Resource
from matching.documents import explain, to_document
from matching.embedder import HashingEmbedder


def test_member_text_has_labelled_fields_and_skips_empty_ones() -> None:
    doc = to_document(
        Member(
            id=4,
            community_id=1,
            display_name="Ann Lee",
            bio="Founder of a  seed-stage\nrobotics company.",
            skills="",
            offers="angel investing",
            needs="a CTO",
            location="Berlin",
        )
    )
    assert doc.text == (
        "Ann Lee\nBio: Founder of a seed-stage robotics company.\nOffers: angel investing\n"
        "Needs: a CTO\nLocation: Berlin"
    )
    assert (doc.kind, doc.id, doc.title, doc.detail) == (
        "member",
        4,
        "Ann Lee",
        "Founder of a seed-stage robotics company. · Berlin",
    )


def test_member_detail_is_clipped_and_falls_back_to_offers() -> None:
    long_bio = "word " * 100
    doc = to_document(Member(id=1, community_id=1, display_name="A", bio=long_bio, location="Paris"))
    prose, place = doc.detail.split(" · ")
    assert place == "Paris" and prose.endswith("…") and len(prose) <= 141
    assert to_document(Member(id=2, community_id=1, display_name="B", offers="intros")).detail == "intros"


def test_resource_and_event_texts() -> None:
    faq = to_document(Resource(id=1, community_id=1, title="How do I RSVP?"))
    assert faq.text == "How do I RSVP?"  # the FAQ embeds exactly like the question asked
    res = to_document(
        Resource(
            id=2,
            community_id=1,
            title="Grants",
            url="https://g.example",
            description="Non-dilutive money.",
            tags="funding, 政府，grants",
        )
    )
    assert res.text == "Grants\nNon-dilutive money.\nTags: funding, 政府, grants"
    assert (res.url, res.detail) == ("https://g.example", "Non-dilutive money.")
    ev = to_document(
        Event(
            id=3,
            community_id=1,
            title="Demo day",
            description="Ten teams pitch.",
            place="Hall 2",
            link="https://e.example",
            timezone="America/Los_Angeles",
            starts_at=datetime(2024, 3, 10, 17, 30, tzinfo=UTC),
        )
    )
    assert ev.text == "Demo day\nTen teams pitch.\nPlace: Hall 2"
    assert (ev.url, ev.detail) == ("https://e.example", "Sun 10 Mar 2024, 10:30 America/Los_Angeles · Hall 2")


def test_event_time_falls_back_to_utc_for_an_unknown_zone() -> None:
    when = datetime(2024, 7, 12, 11, 0, tzinfo=UTC)
    for zone in ("Mars/Olympus", ""):
        doc = to_document(Event(id=5, community_id=1, title="x", starts_at=when, timezone=zone))
        assert doc.detail.startswith("Fri 12 Jul 2024, 11:00 ")


def test_all_day_events_are_dates_in_their_own_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    conf = Event(
        id=6,
        community_id=1,
        title="ArchConf",
        timezone="Europe/Paris",
        all_day=True,
        starts_at=datetime(2026, 12, 7, tzinfo=paris).astimezone(UTC),
        ends_at=datetime(2026, 12, 11, tzinfo=paris).astimezone(UTC),
    )
    assert to_document(conf).detail == "Mon 7 Dec 2026 – Thu 10 Dec 2026 (all day) Europe/Paris"
    la = ZoneInfo(
        "America/Los_Angeles"
    )  # a reader elsewhere still sees the same dates, not 16:00 the day before
    assert event_when(conf, tz=la, language="en") == "Mon 7 Dec 2026 – Thu 10 Dec 2026 (all day)"
    assert event_when(conf, tz=la, language="zh") == "2026年12月7日（周一） – 2026年12月10日（周四）（全天）"


def test_to_document_refuses_unsaved_or_foreign_rows() -> None:
    with pytest.raises(ValueError, match="no database id"):
        to_document(Resource(community_id=1, title="x"))
    with pytest.raises(TypeError):
        to_document(Community(id=1, name="x"))  # type: ignore[arg-type]


def test_explain_prefers_the_field_sharing_most_words_and_stems() -> None:
    doc = to_document(
        Member(
            id=1,
            community_id=1,
            display_name="Robo Investor",
            skills="robots, firmware",
            offers="investing in robotics, hardware intros",
        )
    )
    assert explain(query="who invests in robotics hardware?", document=doc) == (
        "offers: investing in robotics, hardware intros; shares 'invests', 'robotics', 'hardware'"
    )
    far = "x " * 60 + "the term sheet is here"
    long_doc = to_document(Resource(id=1, community_id=1, title="Guide", description=far))
    why = explain(query="term sheet", document=long_doc)
    assert why.startswith("description: …") and "term sheet" in why and why.endswith("shares 'term', 'sheet'")
    assert explain(query="cloud", document=doc, best_field="skills") == (
        "skills: robots, firmware; close in meaning"
    )


def test_hashing_embedder_is_deterministic_normalised_and_bag_of_words() -> None:
    emb = HashingEmbedder(dim=64)
    a, b, c, empty = emb.embed_passages(["angel investing", "Investing, ANGEL!", "kubernetes", ""])
    assert np.allclose(a, b) and np.linalg.norm(a) == pytest.approx(1.0)
    assert abs(float(a @ c)) < 0.8 and not empty.any()
    again = HashingEmbedder(dim=64).embed_queries(["天使投资"])
    assert np.array_equal(again, emb.embed_queries(["天使投资"]))
    assert emb.embed_queries([]).shape == (0, 64) and emb.embed_queries(["x"]).dtype == np.float32
