"""Train the intent model shipped in ``nlp/seed/model/`` from the seed files, for the default base model.

Run it after editing ``nlp/seed/*.jsonl`` (a test fails until you do: the shipped model records the
digest of the seed files it saw, :func:`nlp.seed.seed_digest`)::

    export OMP_WAIT_POLICY=PASSIVE
    .venv/bin/python scripts/train_seed_model.py      # ~5 minutes on 2 CPU cores

It trains on the seeds without the golden set (:func:`nlp.seed.training_seeds`; the golden set judges
retrainings) with the product's defaults (:func:`nlp.training.train_intent_model`, seed 13),
replaces the folder atomically, writes ``seeds.sha256`` and prints the validation figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.settings import Settings  # noqa: E402
from nlp.seed import SHIPPED_DIGEST_FILE, SHIPPED_MODEL_DIR, seed_digest, training_seeds  # noqa: E402
from nlp.training import train_intent_model  # noqa: E402


def main() -> int:
    """Train, save and stamp the shipped seed model; returns the process exit code."""
    base_model = Settings.model_fields["base_model"].default
    digest = seed_digest()
    result = train_intent_model(examples=training_seeds(), base_model=base_model,
                                out_dir=SHIPPED_MODEL_DIR, seed=13, progress=True)
    (SHIPPED_MODEL_DIR / SHIPPED_DIGEST_FILE).write_text(digest + "\n", encoding="utf-8")
    shown = {k: v for k, v in result.metrics.items() if k not in ("history", "train_label_counts")}
    print(json.dumps({"base_model": base_model, "seed_digest": digest, **shown}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
