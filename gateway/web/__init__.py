"""The leading group's web pages (领导小组页面): plain HTML, CSS and JavaScript served from the
gateway under /ui/, no build step. The pages sign in with POST /api/v1/auth/token and call the
JSON API with the bearer token, so every role and scope rule stays the API's own.

Chart.js is vendored in static/vendor (county networks are closed: no CDN)."""
import mimetypes
from pathlib import Path
from typing import Any

from werkzeug.security import safe_join
from werkzeug.wrappers import Response

ROOT = Path(__file__).resolve().parent
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".ico": "image/x-icon", ".md": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
# Everything the pages need comes from this server; the API is same-origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _not_found(path: str) -> Any:
    return Response(f"no such page: /ui/{path}\n", status=404, mimetype="text/plain")


def serve(path: str = "") -> Any:
    """GET /ui/ → the single page; GET /ui/<path> → a file under gateway/web (not this module)."""
    path = path or "index.html"
    if path.endswith(".py") or "__pycache__" in path:
        return _not_found(path)
    full = safe_join(str(ROOT), path)
    if full is None or not Path(full).is_file():
        return _not_found(path)
    suffix = Path(full).suffix.lower()
    content_type = TYPES.get(suffix) or mimetypes.guess_type(full)[0] or "application/octet-stream"
    return Response(Path(full).read_bytes(), status=200, content_type=content_type, headers=SECURITY_HEADERS)
