"""Keyset pagination for list queries: `?limit=` (default 50, max 500) and an opaque cursor."""
import base64
import json
from collections.abc import Callable
from typing import Any

from .errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*={0,2}$"  # what encode_cursor writes (URL-safe base64); empty: the first page


def page_limit(limit: int) -> Any:
    if limit is None:
        return DEFAULT_LIMIT
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise ValidationFailed("limit must be a whole number", {"limit": ["not an integer"]}) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", {"limit": [f"must be 1..{MAX_LIMIT}"]})
    return limit


def encode_cursor(last_key: Any) -> Any:
    """`last_key` is whatever identifies the last row served (e.g. a sort value and an id)."""
    return base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode()


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise ValidationFailed("the cursor is not one this API gave out", {"cursor": ["invalid"]}) from None


def page(rows: Any, limit: int, key: Callable[[Any], Any]) -> dict[str, Any]:
    """Given up to limit+1 rows fetched past the cursor, return {items, next_cursor}.

    `key(row)` gives the keyset value of a row (JSON-serialisable)."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": encode_cursor(key(rows[-1])) if has_more and rows else None}
