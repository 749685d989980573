"""The HTTP endpoint of `cidx serve`: health, metrics and search for other programs.

Split by concept: `_settings` (address and token, checked before anything
opens), `_request` (`/search`'s parameters), `_collector` (`/metrics` through
prometheus-client), `_app` (the Starlette routes, token check and JSON
errors), `_server` (uvicorn on a thread of the owner, drain on stop) and
`_info` (`serve.json`). Only `cidx serve` imports this package, so other
commands never load Starlette, uvicorn or prometheus-client.
"""

from cidx.http_api._app import Searchable, create_app
from cidx.http_api._info import INFO_FILE_MODE, INFO_FILE_NAME, ServeInfo
from cidx.http_api._request import SEARCH_PARAMS, search_request
from cidx.http_api._server import DRAIN_SECONDS, HttpServer, starter
from cidx.http_api._settings import (
    REQUEST_TIMEOUT_SECONDS,
    TOKEN_ENV,
    HttpSettings,
    Listen,
    http_settings,
    parse_address,
    resolve_address,
    resolve_token,
)

__all__ = [
    "DRAIN_SECONDS",
    "INFO_FILE_MODE",
    "INFO_FILE_NAME",
    "REQUEST_TIMEOUT_SECONDS",
    "SEARCH_PARAMS",
    "TOKEN_ENV",
    "HealthSource",
    "HttpServer",
    "HttpSettings",
    "Listen",
    "Searchable",
    "ServeInfo",
    "create_app",
    "http_settings",
    "parse_address",
    "resolve_address",
    "resolve_token",
    "search_request",
    "starter",
]
