"""The one rule for links that members share: ``/resource add`` and every importer use it.

A link starts with ``http://``, ``https://`` or ``www.`` and has no spaces; ``www.`` links get
``https://`` in front. Anything else (``not a url``, ``mailto:``, ``example.com``) is not a link.
"""

from __future__ import annotations

import re

#: What a link looks like (matched against a whole word).
LINK = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)


def normalise_link(text: str) -> str | None:
    """``text`` as a stored link (``www.x.org`` -> ``https://www.x.org``), or ``None`` when it is not one."""
    text = text.strip()
    if not LINK.fullmatch(text):
        return None
    return text if "://" in text else f"https://{text}"
