"""``GET /api/halls/{hall}/announcements/{number}/{window}.wav``: a call's announcement, public.

Only the number of a ticket the hall has issued today, with any of its windows, is answered (a
recall is the same URL); anything else is a 404 with the API's error body, before any work. Any
well-formed number would do for the voice, but then ~200,000 distinct URLs would each cost a
fresh half-megabyte join for a 100-byte request (the joined-WAV cache holds ~65): a cheap way to
load the server. The answer is a WAV joined from segments rendered once, never new synthesis.
It depends only on the hall's config (and on whether espeak-ng is there), so browsers may keep
it: a recall plays from their cache.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Parameter,
    Schema,
)
from litestar.params import FromPath

from displays.voice.service import UnknownNumber, VoiceService
from hall.domain.state import HallState

PATH = "/api/halls/{hall}/announcements/{number}/{window}"
SUFFIX = ".wav"
MEDIA_TYPE = "audio/wav"
# Not "immutable": the URL does not name the config, and a restart with another template or
# with espeak-ng installed must be heard within the hour.
CACHED = "public, max-age=3600"
RETRY = "no-cache"  # a segment failed to render this time: ask again next time


@get(
    "/api/halls/{hall:str}/announcements/{number:str}/{window:str}",
    media_type=MEDIA_TYPE,
    tags=["announcements"],
    summary="A call's spoken announcement (WAV)",
)
async def announcement(
    state: State,
    hall: FromPath[str],
    number: FromPath[str],
    window: FromPath[str],
) -> Response[bytes]:
    """The chime, then the call in each configured language (``repeat`` times): mono 16-bit
    22,050 Hz WAV. The chime alone where no speech engine is installed."""
    voice: VoiceService = state.service.voice
    window_id = window[: -len(SUFFIX)] if window.endswith(SUFFIX) else None
    voice.check(hall, number, window_id)  # the shapes first: no lock taken for junk

    def issued(hall_state: HallState) -> bool:  # a dict lookup under the engine's lock
        day = hall_state.day
        return day is not None and f"{day:%Y%m%d}-{number}" in hall_state.tickets

    if not await state.service.engine(hall).read(issued):
        raise UnknownNumber(f"hall {hall} has issued no ticket {number} today", number=number)
    joined = await voice.announcement(hall, number, window_id)
    headers = {"Cache-Control": CACHED if joined.final else RETRY}
    return Response(joined.wav, media_type=MEDIA_TYPE, headers=headers)


def declare(app: Litestar) -> None:
    """Say in the OpenAPI document what the route is: Litestar cannot route a parameter with a
    suffix inside a path segment, so the route takes the segment and this document names it
    ``{window}.wav``; the parameters' shapes; a binary WAV body and its cache header."""
    document = app.openapi_schema
    assert document.paths is not None
    item = document.paths.pop(PATH)
    document.paths[PATH + SUFFIX] = item
    operation = item.get
    assert operation is not None and operation.responses is not None
    shapes = {
        "number": (
            "The number of a ticket this hall issued today: a category prefix and digits (A012)",
            r"^[A-Z]{1,2}[0-9]{2,5}$",
        ),
        "window": ("A window id of this hall", r"^[A-Za-z0-9_-]{1,16}$"),
    }
    for parameter in operation.parameters or []:
        if isinstance(parameter, Parameter) and parameter.name in shapes:
            description, pattern = shapes[parameter.name]
            parameter.description = description
            parameter.schema = Schema(type=OpenAPIType.STRING, pattern=pattern)
    headers: dict[str, Any] = {
        "Cache-Control": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING))
    }
    binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
    not_found = operation.responses["404"]
    assert isinstance(not_found, OpenAPIResponse)  # hall.api.openapi.declare_errors made it
    not_found.description = "No such hall or window, or no ticket of that number today"
    operation.responses["200"] = OpenAPIResponse(
        description="The announcement",
        headers=headers,
        content={MEDIA_TYPE: OpenAPIMediaType(schema=binary)},
    )
