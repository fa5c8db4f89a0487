"""The evaluation pad (评价器) in front of a window: its staff card while idle, and the rating of
each transaction the window finishes (好差评, one rating per transaction).

``/pad/{hall}``: the pad's device token comes from ``#token=`` on first open (then kept by the
browser); ``GET …/devices/me`` tells the page its window. It follows that window's screen feed,
whose ``rating`` is the transaction to offer; within ``[rating] pad_seconds`` of its finish the
pad offers the five levels (with the hall's reasons and an optional comment for the two lowest)
and posts the answer, or ``{"level": null}`` ("not rated") when none came in time, with the pad's
token to ``POST …/tickets/{id}/rating``.
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from devices.listed import DevicePage
from displays.pages import hall_or_404
from hall.domain import rating


@get("/pad/{hall:str}", include_in_schema=False, sync_to_thread=False)
def pad_page(state: State, hall: FromPath[str]) -> Template:
    config = hall_or_404(state, hall)
    if isinstance(config, Template):
        return config
    return Template(
        "pad.html",
        context={
            "config": config,
            "levels": rating.LEVELS,
            "reasons": config.rating.reasons,
            "settings": {
                "hall": config.hall.id,
                "timezone": config.hall.timezone,
                "api": f"/api/halls/{config.hall.id}",
                "require_device": config.screens.require_device,
                "pad_seconds": config.rating.pad_seconds,
                "low_levels": rating.LOW_LEVELS,
            },
        },
    )


ROUTES: list[Any] = [pad_page]
PAGES = (
    DevicePage(
        path="/pad/{hall}",
        name="评价器",
        name_en="Evaluation pad",
        about="窗口前的评价器：空闲时显示工作人员信息，每笔业务办结后请办事人评价（五级，差评选原因）；"
        "超时未评记为“未评价”。首次打开时在地址后加 #token=评价器设备令牌（令牌决定窗口）。",
        about_en="The pad in front of a window: the staff card while idle, and after each "
        "transaction the visitor's rating (five levels; reasons for the two lowest); no answer "
        "in time is recorded as not rated. Open it once with #token=PAD-DEVICE-TOKEN (the token "
        "names its window).",
    ),
)
