"""A device asks who it is: the kiosk page learns whether its kiosk has a printer (to say "please
take your ticket"), and any device page can tell a wrong token from a missing one."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromPath

from hall.api.auth import principal_of, requires
from hall.config import Device

# Every kind the hall file knows (kiosk, caller, pad, printer, speaker, screen).
ANY_DEVICE = requires(*(f"device:{kind}" for kind in get_args(get_type_hints(Device)["kind"])))


class DeviceSelf(msgspec.Struct, frozen=True, kw_only=True):
    """The calling device as the hall file defines it (never its token or the token's hash)."""

    id: str
    kind: str
    window: str | None  # a pad's, a caller's or a window screen's window
    printer: str | None  # a kiosk's ticket printer (its tickets are printed), else null


class DeviceController(Controller):
    path = "/api/halls/{hall:str}/devices"
    tags = ["devices"]

    @get("/me", opt=ANY_DEVICE)
    async def me(self, request: Request[Any, Any, Any], hall: FromPath[str]) -> DeviceSelf:
        """The device whose token the request presents (any kind of device token)."""
        config = request.app.state.service.engine(hall).config
        device = config.device(principal_of(request).name)
        assert device is not None  # the principal was found among these devices
        return DeviceSelf(
            id=device.id, kind=device.kind, window=device.window, printer=device.printer
        )
