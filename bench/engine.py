"""Durable commands per second: through HallEngine and through HTTP, on SQLite and on Redis.

    .venv/bin/python bench/engine.py            # full run, about 2-3 minutes
    .venv/bin/python bench/engine.py --quick    # shorter runs, for a smoke test
    .venv/bin/python bench/engine.py --backends sqlite --layers http --profile
    .venv/bin/python bench/engine.py --wait-quiet 60  # on a shared machine: wait for idle

What runs (each on fresh data in a temporary directory, removed afterwards):

* backends: SQLite (WAL, ``synchronous=FULL``: the commit returns after the WAL is fsynced) and a
  private ``redis-server`` with ``appendonly yes, appendfsync always``.
* layers: ``engine`` (``HallEngine.execute`` in this process; the load generator shares its event
  loop) and ``http`` (``hall`` app on uvicorn, one server process, as ``hall serve`` runs it; the
  load generator is a separate process speaking raw HTTP/1.1 over keep-alive connections).
* the mix: a busy hall at peak. Kiosks issue tickets (5 % green lane) while every window runs
  call-next -> start -> finish; one issue for every three window commands, so the waiting line
  stays at its pre-filled length (a realistic peak queue, not an empty hall, not an ever-growing
  one). Windows are comprehensive (every category, in rotated profile orders), so any window can
  take any ticket. Logins and the pre-fill are set-up, not measured.
* modes:
  - ``group commit, open loop``: a fixed offered rate, each kiosk and window its own Poisson
    stream; a stream whose previous command is still in flight sends the next as soon as it is
    acknowledged, and latency is measured from the *scheduled* send time, so a stall shows in the
    latency instead of silently lowering the load (no coordinated omission). This is the row the
    target is checked against.
  - ``group commit, closed loop``: every window and kiosk sends its next command as soon as the
    previous one is acknowledged, no think time: the saturation throughput, and its latency.
  - ``no batching``: ``max_batch=1`` and one client sending one command at a time: the cost of a
    single durable command (one fsync each) when there is nothing to batch.

Latency is from submit (or scheduled submit) to acknowledgement, i.e. after the events are durable.
``cmds/append`` is how many events one journal append (one fsync) carried on average; ``append
ms`` is how long the append calls took. CPU is measured per process from /proc (server or engine
process, HTTP load generator, redis-server) and for the whole machine, so that the work of other
processes on a shared machine shows in the ``other`` column instead of silently in the figures.

The HTTP server process is started by this file (``_server`` entry below) so that it can count
journal appends and, for the no-batching mode, build engines with ``max_batch=1``; otherwise it is
``hall serve``: same ``create_app``, same uvicorn settings, access log off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import sys
import tempfile
from pathlib import Path

from loadgen import BACKLOG, GREEN_SHARE, OFFERED_RATE, WINDOWS, client_main
from report import NOTES, machine_context, print_profile, print_table, verdicts
from scenarios import Plan, Row, bench_config, private_redis, run_phase, server_main


def run(args: argparse.Namespace) -> int:
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 8.0)
    warmup = 0.5 if args.quick else 1.0
    backends = args.backends.split(",")
    layers = args.layers.split(",")
    config_text, categories = bench_config(args.windows)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hall-bench-") as tmp:
        workdir = Path(tmp)
        config_path = workdir / "bench-hall.toml"
        config_path.write_text(config_text, encoding="utf-8")
        plan = Plan(
            seconds, warmup, args.rate, args.windows, workdir, config_text, config_path,
            categories, args.profile, args.wait_quiet,
        )  # fmt: skip
        print("Hall durable-command benchmark")
        for line in machine_context(workdir):
            print("  " + line)
        print(
            f"  hall: {args.windows} comprehensive windows, {len(categories)} categories, "
            f"{BACKLOG} tickets waiting, mix issue:call:start:finish = 1:1:1:1, "
            f"{GREEN_SHARE:.0%} green lane; {seconds:g} s measured after {warmup:g} s warm-up\n",
            flush=True,
        )
        engine_profile = cProfile.Profile() if args.profile and "engine" in layers else None
        with contextlib.ExitStack() as stack:
            redis = stack.enter_context(private_redis(workdir)) if "redis" in backends else None
            for backend in backends:
                for layer in layers:
                    for batching in (True, False):
                        rows += run_phase(plan, backend, layer, batching, redis, engine_profile)
        print()
        print_table(rows)
        print()
        for line in verdicts(rows):
            print(line)
        for row in rows:
            if row.result["errors"] or row.result["empty_calls"]:
                print(
                    f"note: {row.backend}/{row.layer}/{row.mode}: {row.result['errors']} errors "
                    f"(first: {row.result['first_error']}), "
                    f"{row.result['empty_calls']} call-next with nothing waiting"
                )
        busiest = max((row.result["others_cpu"] for row in rows), default=0.0)
        if busiest > 25:
            print(
                f"WARNING: other processes used up to {busiest:.0f} % of a core during the runs "
                "('other' CPU column): this machine was not quiet, so throughput is lower and "
                "latency higher than it would be on an idle machine."
            )
        print()
        print(NOTES.format(cores=os.cpu_count()))
        if engine_profile is not None:
            print_profile(engine_profile, "engine layer, SQLite, all modes (this process)")
        server_prof = workdir / "server.prof"
        if server_prof.exists():
            print_profile(str(server_prof), "HTTP server, SQLite group commit (server process)")
    fails = [line for line in verdicts(rows) if line.startswith("FAIL")]
    return 1 if fails else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_server"]:
        server_main(json.loads(argv[1]))
        return 0
    if argv[:1] == ["_client"]:
        print(json.dumps(asyncio.run(client_main(json.loads(argv[1])))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, help="measured seconds per mode (default 8)")
    parser.add_argument("--quick", action="store_true", help="3 s per mode, shorter warm-up")
    parser.add_argument("--rate", type=float, default=OFFERED_RATE, help="open-loop offered cmds/s")
    parser.add_argument("--windows", type=int, default=WINDOWS, help="windows (and staff)")
    parser.add_argument("--backends", default="sqlite,redis", help="sqlite,redis")
    parser.add_argument("--layers", default="engine,http", help="engine,http")
    parser.add_argument("--profile", action="store_true", help="cProfile engine and server")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each phase, wait up to S s for the machine to be idle (shared machines)",
    )
    parser.add_argument(
        "--skip-history",
        action="store_true",
        help="skip the start-up/recovery (replay.py) and queue-length (queues.py) figures",
    )
    args = parser.parse_args(argv)
    code = run(args)
    if not args.skip_history:
        import queues
        import replay

        print("\n== start-up and recovery after a year of history (bench/replay.py)", flush=True)
        replay.main([])
        print("\n== cost per command against queue length (bench/queues.py)", flush=True)
        queues.main()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
