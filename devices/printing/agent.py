"""The printer agent (``hall printer-agent``): prints the hall's tickets on the printer beside it.

It serves the hall's device link with a printer device's token (devices/link.py): each print job
is laid out for the paper (``ticket_bytes``) and handed to the printer in a thread (python-escpos
blocks). Where the printer answers status queries its paper is checked first: a printer out of
paper or unreachable fails the job with ``paper_out`` or ``printer_offline``, the hall hears it
and sends the job again until it prints. Between jobs the printer is asked for its state every
``status_seconds``, and the hall hears of each change (paper low, out, back; printer gone, back).

A job is printed at most once, in all but one narrow case. Its id goes into the done file
(fsync'd) after the printer took the bytes and before the ack leaves, so a job the hall sends
again (a lost ack, a restarted hall or agent) is acked without printing. An agent that dies
between the printer taking the bytes and that one-line write (a millisecond or so) has printed a
ticket it does not remember: the hall sends it again and the visitor's ticket comes out twice,
which costs paper, not a lost place. The other way round, recording before printing, would lose
the ticket instead. (devices/printing/printers.py says when a silent printer makes a send fail
after the bytes may have printed: the same trade.)

Logs name ticket numbers and ids, never the ticket's URL (it carries the ticket's secret).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from devices import agent_cli
from devices.agent_cli import AgentSettings, Seconds
from devices.done import DoneStore
from devices.link import JobFailed, run_agent
from devices.printing.printers import BadPrinterAddress, Printer, PrinterUnavailable, parse_printer
from devices.printing.ticket import ticket_bytes
from devices.protocol import Job, Print

log = logging.getLogger(__name__)

AGENT = "printer-agent/1"


class Settings(AgentSettings, frozen=True, kw_only=True):
    # tcp://HOST[:PORT], usb://VID:PID, serial:///dev/ttyUSB0?baudrate=9600, file:///dev/usb/lp0
    printer: str
    paper: Literal[58, 80] = 80  # mm
    status_seconds: Seconds = 5.0  # how often the printer is asked for its state between jobs
    # Whether the printer answers status queries (DLE EOT): "yes" makes a query left unanswered
    # mean the printer is gone (the ticket is sent again), however it behaved when the agent
    # connected; "auto" learns it on each connection from the first query.
    status_answers: Literal["auto", "yes"] = "auto"
    state: str = "var/printer-agent"

    def problems(self) -> Iterable[tuple[str, str]]:
        yield from super().problems()
        try:
            parse_printer(self.printer)
        except BadPrinterAddress as exc:
            yield "printer", str(exc)


def main(args: argparse.Namespace) -> int:
    return agent_cli.main("printer-agent", args, Settings, serve)


class TicketPrinter:
    """Perform print jobs on one printer: the ``perform`` and ``status`` of ``run_agent``."""

    def __init__(self, printer: Printer, paper: int) -> None:
        self.printer = printer
        self.paper = paper

    async def perform(self, job: Job) -> None:
        if not isinstance(job, Print):
            raise JobFailed("error", f"a printer agent does not do {type(job).__name__} jobs")
        data = ticket_bytes(job.ticket, self.paper)
        await asyncio.to_thread(self._print, data)
        log.info("printed %s (%s)", job.ticket.number, job.id)

    async def status(self) -> str:
        return await asyncio.to_thread(self.printer.status)

    def _print(self, data: bytes) -> None:
        # A printer known not to answer would cost a wait for each ticket; its paper is unknown.
        if self.printer.answers is not False:
            status = self.printer.status()
            if status == "paper_out" or status == "printer_offline":
                raise JobFailed(status)
        try:
            self.printer.send(data)
        except PrinterUnavailable as exc:
            raise JobFailed("printer_offline", str(exc)) from None


async def serve(settings: Settings, token: str, stop: asyncio.Event) -> None:
    """Print the hall's tickets until ``stop`` is set."""
    printer = Printer(settings.printer, answers=True if settings.status_answers == "yes" else None)
    store = DoneStore(Path(settings.state) / "done.txt")
    tickets = TicketPrinter(printer, settings.paper)
    log.info(
        "printing on %s (%d mm); %d jobs done before", printer.address, settings.paper, len(store)
    )
    try:
        await run_agent(
            settings.hall_url,
            token=token,
            agent_name=AGENT,
            perform=tickets.perform,
            done_store=store,
            stop=stop,
            status=tickets.status,
            status_seconds=settings.status_seconds,
        )
    finally:
        store.close()
        await asyncio.to_thread(printer.close)
