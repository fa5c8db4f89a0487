"""The OpenAPI document, made to say what the server really does, and a viewer that needs no CDN.

Litestar documents its own 400 body and nothing else. Integrators and test tools generate clients
from the document, so :func:`declare_errors` rewrites it once, from the routes themselves: every
error is our ``Error`` body; each operation lists the statuses it can answer, derived from what it
is (anything can be malformed or too large; a route under a hall can meet an unknown hall or a
stalled journal; a command can meet every domain refusal); guarded routes carry the bearer
scheme; and request bodies are described by msgspec, which decodes them (so ``additionalProperties:
false`` where unknown fields are refused, and every bound it checks).

The viewer is Swagger UI from the ``swagger-ui-bundle-v2`` package, served by this server: halls
run on closed networks, and a page that loads its scripts from a CDN shows nothing there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import swagger_ui_bundle
from litestar import Litestar
from litestar.exceptions import ImproperlyConfiguredException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from hall.api import idempotency
from hall.api.auth import REQUIRES
from hall.api.errors import STATUS
from hall.api.limits import MAX_BODY_BYTES, MAX_BODY_DEPTH

VIEWER = "/schema/swagger"
ASSETS = "/static/swagger-ui"
BEARER = "bearer"
ERROR = Reference(ref="#/components/schemas/Error")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

WHY = {
    400: "Malformed request: bad JSON, an unknown field, a wrong type or a value out of bounds"
    f" (or a body nested more than {MAX_BODY_DEPTH} levels)",
    401: "No credential, or an unknown or expired one (or a wrong password)",
    403: "The credential may not do this (wrong role, or not this staff member's window)",
    404: "No such hall, ticket or window",
    409: "The hall's state does not allow this now (e.g. the window is busy, the ticket is served)",
    413: f"The request body is larger than {MAX_BODY_BYTES} bytes",
    422: "The command names something the hall does not have, or an invalid combination",
    429: "Too many attempts; try again later (``detail.retry_after``: seconds)",
    503: "The hall's journal is unavailable; try again",
}
ANYTHING = {400, 413}  # BodyLimits and Litestar's own validation stand before every route
IN_A_HALL = {404, 503}
# A command can meet every refusal that errors.STATUS maps (login takes its credential in the body).
COMMAND = {status for _, status in STATUS} | {400, 401, 403}


def config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Hall",
        version="0.1.0",
        path="/schema",
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A device token, or the token a staff login answers",
                )
            },
        ),
        render_plugins=[
            JsonRenderPlugin(path=["/", "/openapi.json"]),
            SwaggerRenderPlugin(
                path="/swagger",
                js_url=f"{ASSETS}/swagger-ui-bundle.js",
                css_url=f"{ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
            ),
        ],
    )


def viewer_assets() -> ControllerRouterHandler:
    return create_static_files_router(
        path=ASSETS, directories=[Path(swagger_ui_bundle.swagger_ui_path)], include_in_schema=False
    )


def declare_errors(app: Litestar) -> None:
    """Rewrite the app's OpenAPI document (built here, once) to match what the routes answer."""
    document = app.openapi_schema
    assert document.components is not None and document.components.schemas is not None
    schemas = document.components.schemas
    schemas["Error"] = _error_schema()  # Litestar replaces the config's schemas with its own
    bodies: list[tuple[Operation, Any]] = []
    for route in app.routes:
        item = document.paths.get(route.path_format) if document.paths else None
        if item is None or not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation: Operation | None = getattr(item, method.lower(), None)
                if operation is None:
                    continue
                guarded = REQUIRES in handler.opt
                if any(isinstance(guard, dict) for guard in handler.guards or ()):
                    raise ImproperlyConfiguredException(  # it would never be checked
                        f"{route.path_format}: write opt=requires(...), not guards=[requires(...)]"
                    )
                statuses = set(ANYTHING)
                if "{hall}" in route.path_format:
                    statuses |= IN_A_HALL
                if method in MUTATING:
                    statuses |= COMMAND
                if guarded:
                    statuses |= {401, 403}
                    operation.security = [{BEARER: []}]
                    if method in MUTATING:
                        operation.parameters = [*(operation.parameters or []), _KEY_HEADER]
                responses = operation.responses or {}
                for status in sorted(statuses):
                    responses[str(status)] = _error_response(WHY[status])
                operation.responses = responses
                body = handler.parsed_fn_signature.parameters.get("data")
                if body is not None:
                    bodies.append((operation, body.annotation))
    _request_schemas(bodies, schemas)


def _request_schemas(bodies: list[tuple[Operation, Any]], schemas: dict[str, Any]) -> None:
    """Request bodies as msgspec, which decodes them, describes them: Litestar's generator drops
    what msgspec enforces on list items and does not say that unknown fields are refused."""
    refs, components = msgspec.json.schema_components(
        [annotation for _, annotation in bodies], ref_template="#/components/schemas/{name}"
    )
    schemas.update(components)
    for (operation, _), ref in zip(bodies, refs, strict=True):
        body = operation.request_body
        assert body is not None and not isinstance(body, Reference)
        body.content["application/json"].schema = Reference(ref=ref["$ref"])


_KEY_HEADER = Parameter(
    name=idempotency.HEADER,
    param_in="header",
    required=False,
    description="Retry a command with the same key to get its first answer instead of doing it "
    "twice (kept for the business day; 409 if the key was used for another command)",
    schema=Schema(type=OpenAPIType.STRING, pattern=f"^{idempotency.KEY_PATTERN}$"),
)


def _error_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["error", "message", "detail"],
        properties={
            "error": Schema(type=OpenAPIType.STRING, description="A stable code: unknown_category"),
            "message": Schema(type=OpenAPIType.STRING, description="For people; may change"),
            "detail": Schema(description="Facts about the error (an object), or null"),
        },
        additional_properties=False,
        description="Every error the server answers",
    )


def _error_response(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"application/json": OpenAPIMediaType(schema=ERROR)},
    )
