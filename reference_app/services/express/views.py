"""Express endpoints (being written)."""

from reference_app.http_api import Route

ROUTES: list[Route] = []
