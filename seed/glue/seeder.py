"""The one owner of kanta-seed in a process, in the spirit of Locust's ``Runner``: it holds the run's
life in one place.

- one ``phase`` (``Phase``), changed only by its methods: ``begin`` (a run starts), ``end_itself`` /
  ``stop`` (the run is ending, and why), ``finish`` (the summary exists);
- one ``Ending`` per run (its kind, the reason said in the summary, the signals received);
- every greenlet it starts is in ``self.greenlets`` and linked to one crash path (``crashed``).

Which process does what: local (one process): coordinator and users, the link talks to the coordinator
by direct calls; master: coordinator only (it indexes the data set; a worker with its own copy reads the
images itself, one without gets the bytes with its grants); worker: users only, it needs no data file.
``lifecycle.py`` has Locust's listeners, one line each.

Stopping: the first Ctrl-C (SIGINT) or SIGTERM stops handing out work and lets the uploads in flight
finish within --stop-timeout (default 10 s), so their uuids reach the ledger; the summary is printed
and the process exits. A second signal stops at once (what was in flight is recorded as maybe sent,
for the next run to decide by content); a third leaves without a word more.
"""

from __future__ import annotations

import enum
import logging
import os
import resource
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from gevent.pool import Group
from locust import stats as locust_stats
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import MasterRunner, WorkerRunner

from seed.coordination.coordinator import MESSAGE, RESULT_WINDOW_S, Coordinator, SeedLink, from_wire, to_wire
from seed.coordination.options import Settings
from seed.coordination.preflight import BadInput, Plan
from seed.coordination.run import Run
from seed.coordination.tally import RunParams, tally
from seed.core import gate, greenlets, history
from seed.core.exit_codes import EXIT_BAD_INPUT
from seed.core.junit import junit_xml
from seed.core.ledger import Ledger, ProcessLedger
from seed.core.summary import Summary, markdown, render, write_json, write_text
from seed.core.words import counted
from seed.core.work import State
from seed.glue import plans, progress
from seed.glue.report import report_html, write_report
from seed.kanta.client import KantaClient, locust_transport
from seed.standin.launcher import StandinError, StandinProcess

log = logging.getLogger("kanta_seed")
FIRST_LOOK_S = 0.25  # the first 202s' background jobs usually finish within this
TICK_S = 0.1
PROGRESS_EVERY_S = 3.0
LOST_WORKER_POLL_S = 1.0
HISTORY_SHOWN = 30  # runs of --history in the report's trend
RUN_ID_OPTION = "kanta_seed_run"  # travels to workers inside Locust's spawn message
# Without --stop-timeout Locust kills users mid-request, and an upload killed in flight may or may
# not have been stored. A grace lets it finish and report; waiting users leave at once.
DEFAULT_STOP_TIMEOUT_S = 10.0
SEEDERS: list[Seeder] = []  # for the events Locust fires without the environment (one per process)


class Phase(enum.StrEnum):
    IDLE = "idle"  # no run yet, or between runs (the web UI)
    RUNNING = "running"
    ENDING = "ending"  # it ends (by itself, a stop or a signal): no more work is handed out
    ENDED = "ended"  # the summary exists


class EndKind(enum.StrEnum):
    DONE = "done"  # every image at its end stage
    STALLED = "stalled"  # it ended by itself before that (a silent Kanta, a failed event)
    CRASHED = "crashed"  # an internal error: exit 1, said in one line
    TIMED = "timed"  # -t ran out: judged on what it did
    STOPPED = "stopped"  # the web UI's STOP, or Locust stopped the test
    SIGNAL = "signal"  # Ctrl-C or SIGTERM


@dataclass(frozen=True)
class Ending:
    kind: EndKind
    reason: str = ""  # said in the summary ("" for DONE and TIMED)

    @property
    def stopped(self) -> bool:
        """Stopped from outside before its end: the summary says so, and judges nothing as lost."""
        return self.kind in (EndKind.STOPPED, EndKind.SIGNAL)


class Seeder:
    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.link: SeedLink | None = None  # where users run: the local process or a worker
        self.coordinator: Coordinator | None = None  # where the queue lives: the local process or the master
        self.settings: Settings | None = None
        self.plan: Plan | None = None  # prepared ahead (headless, or a web UI form check), for the next run
        self.run: Run | None = None  # the current (or last) run, on the coordinating process
        self.runs = 0
        # What this process's runs did, where no ledger file is kept: the web UI's NEW resumes from it.
        self.memory = ProcessLedger()
        self.standin: StandinProcess | None = None
        self.phase = Phase.IDLE
        self.ending: Ending | None = None
        self.signals = 0  # SIGINT/SIGTERM received: 1 stops gracefully, 2 at once, 3 leaves
        self.stopper: gevent.Greenlet | None = None  # the greenlet stopping the run after a signal
        self.sigterm = False  # the stopper is Locust's SIGTERM shutdown (a second SIGTERM stops at once)
        self.printed = False
        self.greenlets = Group()

    # --- greenlets: one group, one crash path ----------------------------------------------------------
    def spawn(self, name: str, fn: Any, *args: Any, delay: float = 0.0) -> gevent.Greenlet:
        return greenlets.spawn(name, fn, *args, on_error=self.crashed, delay=delay, group=self.greenlets)

    def spawner(self, name: str, delay: float, fn: Any, *args: Any) -> gevent.Greenlet:
        """For the coordinator and the link (a floor below): their greenlets are ours too."""
        return self.spawn(name, fn, *args, delay=delay)

    def crashed(self, name: str, error: BaseException) -> None:
        line = f"internal error in the {name}: {type(error).__name__}: {error}"
        log.error("kanta-seed: %s; ending the run (exit 1)", line)
        run = self.run
        if run is not None and self.phase == Phase.RUNNING:
            run.error = line
            self.spawn("end after a crash", self.end_itself, line, EndKind.CRASHED)

    @property
    def headless(self) -> bool:
        return bool(getattr(self.environment.parsed_options, "headless", False))

    # --- wiring, once per process ----------------------------------------------------------------------
    def wire(self) -> None:
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            self._wire_worker(runner)
        elif isinstance(runner, MasterRunner):
            self.coordinator = Coordinator(
                send=lambda owner, m: runner.send_message(MESSAGE, to_wire(m), client_id=owner),
                users=lambda: runner.user_count,
                spawn=self.spawner,
            )
            coordinator = self.coordinator
            runner.register_message(
                MESSAGE, lambda environment, msg, **_: coordinator.handle(msg.node_id, msg.data)
            )
            self.spawn("lost-worker watch", self._release_lost_workers, runner)
        else:
            link: SeedLink | None = None
            self.coordinator = Coordinator(
                send=lambda owner, m: link.handle(m) if link else None,
                users=lambda: runner.user_count,
                spawn=self.spawner,
            )
            coordinator = self.coordinator
            link = SeedLink(
                send=lambda m: coordinator.handle("local", m),
                batch=lambda: runner.user_count,
                spawn=self.spawner,
            )
            self.link = link

    def _wire_worker(self, runner: WorkerRunner) -> None:
        contact = {"at": time.time()}

        def heard(**_: Any) -> None:
            contact["at"] = time.time()

        runner.environment.events.heartbeat_received.add_listener(heard)
        link = SeedLink(
            send=lambda m: runner.send_message(MESSAGE, m),
            batch=lambda: runner.user_count,
            result_window_s=RESULT_WINDOW_S,
            contact_age=lambda: time.time() - contact["at"],
            spawn=self.spawner,
            # read now: the master's spawn message overwrites the parsed options
            own_images=str(getattr(runner.environment.parsed_options, "images", "") or ""),
        )
        self.link = link

        def on_message(environment: Any, msg: Any, **_: Any) -> None:
            heard()
            data = from_wire(msg.data)
            if data.get("op") == "exit":  # the master's verdict: every process exits with the run's code
                environment.process_exit_code = int(data["code"])
            else:
                link.handle(data)

        runner.register_message(MESSAGE, on_message)

    # --- before a run -----------------------------------------------------------------------------------
    def prepare(self, settings: Settings, reach: bool = True, users: int | None = None) -> Plan:
        return plans.prepare_plan(
            self.environment.parsed_options, settings, self.memory.memory, reach=reach, users=users
        )

    def fail_bad_input(self, message: str) -> None:
        """One line on stderr, exit code 2, before anything was sent."""
        self.stop_standin()
        print(f"kanta-seed: {message}", file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_INPUT)

    def start_standin(self) -> None:
        env = self.environment
        if env.parsed_options.host:
            log.warning("kanta-seed: --standin replaces the host %s", env.parsed_options.host)
        try:
            faults = shlex.split(getattr(env.parsed_options, "standin_faults", "") or "")
            standin = StandinProcess(faults, die_with_parent=True)
            url = standin.start()
        except (StandinError, ValueError) as e:
            self.fail_bad_input(str(e))
            return
        self.standin = standin
        env.host = url
        env.parsed_options.host = url
        for user_class in env.user_classes:
            user_class.host = url
        # A new server every time: a rerun with --standin starts on an empty one, and should say so.
        log.info(
            "kanta-seed: a new, empty stand-in backend at %s (data in %s; it ends with this process)",
            url, standin.workdir,
        )  # fmt: skip

    def stop_standin(self) -> None:
        standin, self.standin = self.standin, None
        if standin is not None:
            standin.stop()

    # --- a run ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Locust's test_start: join the master's run (a worker), or begin one (the coordinating process)."""
        env = self.environment
        options = env.parsed_options
        settings = Settings.from_options(options, env.host)
        self.settings = settings
        for user_class in env.user_classes:  # a request's time limit, before the users spawn
            if hasattr(user_class, "network_timeout"):
                user_class.network_timeout = settings.request_timeout
                user_class.connection_timeout = min(settings.request_timeout, 10.0)
        if self.coordinator is None:  # a worker
            assert self.link is not None
            self.link.reset(str(getattr(options, RUN_ID_OPTION, "")))
            return
        plan, self.plan = self.plan, None  # a plan serves one run: the next looks at the event afresh
        if plan is None or plan.settings != settings:
            try:
                plan = self.prepare(settings)
            except (BadInput, ValueError) as e:
                log.error("kanta-seed: %s", e)
                self.run = None
                self.spawn("stop after bad input", self.stop_runner)
                return
            plans.log_plan(plan)
        run = self.begin(plan)
        setattr(options, RUN_ID_OPTION, run.run_id)
        if self.link is not None:
            self.link.reset(run.run_id)

    def begin(self, plan: Plan) -> Run:
        """A new run from the plan: its ledger, its client, its greenlets."""
        s = plan.settings
        session = FastHttpSession(  # the coordinator's own requests land in Locust's stats too
            base_url=s.host,
            request_event=self.environment.events.request,
            user=None,
            network_timeout=s.request_timeout,
            connection_timeout=s.request_timeout,
        )
        client = KantaClient(s.host, locust_transport(session), s.blob_host)
        # Where no ledger file is kept, this process remembers (the web UI's next run resumes from it); a
        # benchmark never resumes, so it keeps neither.
        ledger: Ledger | None = (
            Ledger(plan.ledger_path) if plan.ledger_path else self.memory if s.mode == "seed" else None
        )
        run = Run(plan, client, ledger=ledger)
        if plan.resuming:
            q = run.queue
            plans.tell_resume(plan, q.total, sum(1 for e in q.entries if e.resumed), q.count(State.DOUBT))
        run.clear_before()  # --fresh, or copies beyond one: removed before the first upload
        self.run, self.ending, self.phase, self.printed = run, None, Phase.RUNNING, False
        self.runs += 1
        assert self.coordinator is not None
        self.coordinator.begin(run)
        self.spawn("read-back", self._drive, run)
        if self.headless:
            self.spawn("progress line", self._report_progress, run, delay=PROGRESS_EVERY_S)
        return run

    def spawned(self) -> None:
        """Every user is running: the ramp-up's end (the steady rate starts here)."""
        run = self.run
        if run is not None and run.spawned_at is None and self.coordinator is not None:
            run.spawned_at = time.time()

    def _drive(self, run: Run) -> None:
        """Poll the event while it matters, and end the run when it is over."""
        last_poll, looked = 0.0, True
        while self.run is run and self.phase == Phase.RUNNING:
            if run.event_failed:
                self.end_itself(f"the event could not be made sure of ({run.event_outcome})", EndKind.STALLED)
                return
            # Whether every image is done changes only with a result or a poll: ask (O(images)) then.
            if run.queue.complete and (looked or not run.settings.verify) and run.done():
                if run.settings.verify and run.queue.count(State.ACCEPTED):
                    run.reconcile()
                    run.look_for_clusters(gevent.sleep)
                    run.check_ground_truth()
                self.end_itself("", EndKind.DONE)
                return
            why = run.stall()
            if why:
                self.end_itself(why, EndKind.STALLED)
                return
            run.probe_clock()
            now = time.time()
            anything = (
                run.first_sent_at is not None
                or run.queue.count(State.DOUBT)
                or run.queue.count(State.ACCEPTED)
            )
            due = (
                now - last_poll >= run.readback.poll_interval()
                and now - (run.first_sent_at or run.started_at) >= FIRST_LOOK_S
            )
            looked = False
            if anything and due:
                run.poll()
                last_poll, looked = time.time(), True
                assert self.coordinator is not None
                self.coordinator.serve()  # a poll may have freed backlog room, reopened or resent images
            gevent.sleep(TICK_S)

    def _report_progress(self, run: Run) -> None:
        """A progress line every few seconds, so a long run in a terminal is not silent."""
        while self.run is run and self.phase in (Phase.RUNNING, Phase.ENDING):
            log.info(progress.line(progress.snapshot(run), run.settings.retry_for))
            gevent.sleep(PROGRESS_EVERY_S)

    # --- the end ----------------------------------------------------------------------------------------
    def _ending(self, ending: Ending) -> bool:
        """Enter the ending once: no more work for anyone; uploads in flight still report."""
        if self.phase != Phase.RUNNING:
            return False
        self.phase, self.ending = Phase.ENDING, ending
        if self.coordinator is not None:
            self.coordinator.end()
        return True

    def end_itself(self, reason: str, kind: EndKind) -> None:
        """The run ends by itself: stop handing out work and stop the runner (which finishes the run)."""
        if not self._ending(Ending(kind, reason)):
            return
        if reason:
            log.warning("kanta-seed: %s; ending the run", reason)
        if getattr(self.environment.parsed_options, "csv_prefix", None):
            # Locust's CSV writer only writes on its interval and not at exit: give it one more tick
            # so --csv holds the run's final figures.
            gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.2)
        self.stop_runner()

    def stop_runner(self) -> None:
        """End the test the way its mode expects: headless exits, the web UI stays up showing STOPPED."""
        options = self.environment.parsed_options
        autoquit = getattr(options, "autostart", False) and getattr(options, "autoquit", -1) != -1
        if options.headless or autoquit:
            self.environment.runner.quit()
        else:
            self.environment.runner.stop()

    def stopping(self) -> None:
        """Locust's test_stopping: whoever stopped the test, no more work is handed out."""
        if self.coordinator is not None:
            run_time = getattr(self.environment.parsed_options, "run_time", None)
            run = self.run
            timed = run_time is not None and run is not None and time.time() - run.started_at >= run_time - 1
            self._ending(Ending(EndKind.TIMED) if timed else self._stopped_from_outside())
        if self.link is not None:
            self.link.close()

    def _stopped_from_outside(self) -> Ending:
        reason = "stopped from the web UI" if not self.headless else "stopped"
        return Ending(EndKind.STOPPED, reason)

    def stopped(self) -> None:
        """Locust's test_stop: claims no user started go back; the coordinating process finishes."""
        if self.link is not None:
            self.link.hand_back_unsent()
        if self.coordinator is not None:
            self.finish()

    def finish(self) -> Summary | None:
        """Summarise the current run once: JSON, Markdown, exit code (sent to workers too)."""
        run = self.run
        if run is None or self.phase == Phase.ENDED:
            return run.summary if run is not None else None
        if self.phase == Phase.IDLE:
            return None
        self._ending(self._stopped_from_outside())  # Locust stopped it without telling us first
        ending = self.ending or self._stopped_from_outside()
        env, s = self.environment, run.settings
        options = env.parsed_options
        if isinstance(env.runner, MasterRunner):  # the master's own share of the client's cost
            run.record_usage(
                "master", (time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            )
        params = RunParams(
            users=int(getattr(options, "num_users", 0) or 0),
            spawn_rate=float(getattr(options, "spawn_rate", 0) or 0),
            run_time=getattr(options, "run_time", None),
            headless=self.headless,
        )
        run.end()
        summary = tally(run, params, ending.reason, ending.stopped, ending.kind == EndKind.TIMED)
        if s.bench_cleanup:
            summary.notes.append(self._clean_up(run))
        run.close(summary)
        self.phase = Phase.ENDED
        self._write_artifacts(run, summary)
        env.process_exit_code = summary.exit_code
        if isinstance(env.runner, MasterRunner):
            env.runner.send_message(MESSAGE, {"op": "exit", "code": summary.exit_code})
        if not self.headless:
            self.print_summary()  # the web UI process goes on: say it now, not at its quit
        return summary

    def _write_artifacts(self, run: Run, summary: Summary) -> None:
        """What the run leaves behind: the summary (JSON, Markdown), its history entry, JUnit XML and the
        one-file HTML report. A file that cannot be written is said in one line; the verdict stands."""
        s = run.settings
        doc = summary.to_dict()
        verdicts = [gate.verdict_from(v) for v in summary.baseline_verdicts]
        outputs: list[tuple[str, Any]] = []
        if s.summary_json:
            outputs.append(("--summary-json", lambda: write_json(summary, s.summary_json)))
        if s.summary_md:
            outputs.append(("--summary-md", lambda: write_text(s.summary_md, markdown(summary))))
        if s.history:
            outputs.append(("--history", lambda: history.append(s.history, doc)))
        if s.junit:
            outputs.append(("--junit", lambda: write_text(s.junit, junit_xml(doc, verdicts))))
        if s.report_html:
            outputs.append(
                ("--report-html", lambda: write_report(s.report_html, self.report(run, doc, verdicts)))
            )
        for flag, write in outputs:
            try:
                write()
            except (OSError, ValueError) as e:
                log.error("kanta-seed: %s could not be written: %s", flag, e)

    def report(self, run: Run, doc: dict[str, Any], verdicts: list[gate.Verdict]) -> str:
        """The one-file HTML report of an ended run (also the web UI's download)."""
        s = run.settings
        past = history.load(s.history, last=HISTORY_SHOWN) if s.history and Path(s.history).is_dir() else []
        progress_doc = {
            "snapshot": progress.snapshot(run),
            "tiles": progress.tiles(run),
            "chart": progress.chart(run),
            "grid": progress.grid(run),
            "rows": [[label, value] for label, value in run.summary.rows()] if run.summary else [],
        }
        return report_html(doc, progress_doc, past, verdicts, request_stats(self.environment))

    @staticmethod
    def _clean_up(run: Run) -> str:
        """--bench-cleanup: the run's own events go (DELETE /events), so a benchmark does not fill a stack."""
        codes = run.plan.event_codes
        answers = {code: run.client.delete_event(code) for code in codes}
        failed = [
            f"{c} ({status or 'no answer'})" for c, status in answers.items() if status not in (200, 204, 404)
        ]
        if failed:
            return f"--bench-cleanup: could not delete {', '.join(failed)}"
        return f"--bench-cleanup: deleted {counted(len(codes), 'event')} ({', '.join(codes)})"

    def print_summary(self) -> None:
        """The verdict, printed once per run: last on the screen (after Locust's own tables when headless)."""
        run = self.run
        if run is None or run.summary is None or self.printed:
            return
        self.printed = True
        print(render(run.summary), flush=True)
        sys.stdout.flush()

    # --- signals ----------------------------------------------------------------------------------------
    def signal(self, name: str) -> None:
        """SIGINT: the first stops gracefully, the second at once, the third leaves."""
        self.signals += 1
        env = self.environment
        if self.signals == 1:
            log.warning(
                "kanta-seed: %s: stopping; uploads in flight get %g s to finish (again to stop at once)",
                name, env.stop_timeout or 0,
            )  # fmt: skip
            self._ending(Ending(EndKind.SIGNAL, f"stopped by {name}"))
            self.stopper = self.spawn("graceful stop", self._stop_gracefully)
        elif self.signals == 2:
            if self.phase == Phase.ENDED:
                return  # the stop is done: the summary is on its way
            log.warning(
                "kanta-seed: %s again: stopping now; what was in flight is recorded as maybe sent", name
            )
            self.stop_now()
        else:
            self.stop_standin()
            os._exit(130)

    def _stop_gracefully(self) -> None:
        if self.coordinator is not None:
            self.coordinator.end()
        self.environment.runner.quit()  # users finish within --stop-timeout; test_stop finishes the run
        self._leave()

    def stop_now(self, quit_after: bool = True) -> None:
        """Kill the users mid-request: their claims stay in the ledger as in flight (maybe sent)."""
        env = self.environment
        env.runner.user_greenlets.kill(block=False)
        stopper = self.stopper
        if stopper is not None and isinstance(env.runner, MasterRunner):
            stopper.kill(block=False)  # a master waits up to a minute for its workers' users
        run = self.run
        if run is not None and self.coordinator is not None and self.phase != Phase.ENDED:
            for owner in run.queue.owners_in_flight():
                run.released(owner, None, maybe_sent=True)
            if self.ending is None or self.ending.kind == EndKind.SIGNAL:
                reason = (self.ending.reason if self.ending else "stopped") + ", then stopped at once"
                self.ending = Ending(EndKind.SIGNAL, reason)
            self.finish()
        if quit_after:
            self.spawn("quit", self._quit_now)

    def _quit_now(self) -> None:
        self.environment.runner.quit()
        self._leave()

    def _leave(self) -> None:
        """The web UI's process ends with its runner when a signal stopped it."""
        if self.environment.web_ui is not None:
            self.environment.web_ui.stop()

    def quitting(self) -> None:
        """Locust is shutting down (the run ended, our Ctrl-C stopper quit the runner, or Locust's SIGTERM
        handler): a run still going is stopped gracefully here, before Locust reads the exit code."""
        stopper = self.stopper
        current = gevent.getcurrent()
        if stopper is not None and not stopper.dead and stopper is not current:
            if self.sigterm:
                # A second SIGTERM while the first one's stop goes on.
                self.signals += 1
                log.warning(
                    "kanta-seed: SIGTERM again: stopping now; what was in flight is recorded as maybe sent"
                )
                self.stop_now(quit_after=False)
                stopper.join()  # the first shutdown prints the summary and exits; this one never goes on
                return
            stopper.join()  # our own Ctrl-C stop is finishing: let it
        if (
            self.coordinator is not None
            and self.run is not None
            and self.phase in (Phase.RUNNING, Phase.ENDING)
        ):
            self.stopper, self.sigterm = current, True
            if not self.signals:
                self.signals = 1
                log.warning(
                    "kanta-seed: SIGTERM: stopping; uploads in flight get %g s to finish"
                    " (again to stop at once)",
                    self.environment.stop_timeout,
                )
                self._ending(Ending(EndKind.SIGNAL, "stopped by SIGTERM"))
            self.environment.runner.stop()
            self.finish()
        if not self.headless:
            self.stop_standin()

    def quit(self) -> None:
        """After Locust's own final tables: the verdict is the last thing on the screen."""
        if self.coordinator is not None and self.headless:
            self.print_summary()
        self.stop_standin()

    # --- distributed ------------------------------------------------------------------------------------
    def _release_lost_workers(self, runner: MasterRunner) -> None:
        """A worker that vanished (killed, frozen, cut off) has its claims put in doubt: the read-back
        decides by content whether they reached Kanta, and sends the others again."""
        while True:
            gevent.sleep(LOST_WORKER_POLL_S)
            coordinator = self.coordinator
            if coordinator is None or coordinator.run is None or self.phase != Phase.RUNNING:
                continue
            for owner in coordinator.run.queue.owners_in_flight():
                client = runner.clients.get(owner)
                if client is None or client.state == "missing":
                    back = coordinator.release(owner, None, maybe_sent=True)
                    if back:
                        log.warning(
                            "kanta-seed: worker %s is gone; its %d claimed images are in doubt until the"
                            " event shows whether they reached Kanta",
                            owner,
                            len(back),
                        )


def request_stats(environment: Any) -> list[dict[str, Any]]:
    """Locust's request statistics, a row per endpoint (for the report)."""
    rows = []
    for entry in environment.stats.entries.values():
        rows.append({
            "method": entry.method,
            "name": entry.name,
            "num_requests": entry.num_requests,
            "num_failures": entry.num_failures,
            "avg": round(entry.avg_response_time, 1),
            "p50": entry.median_response_time,
            "p95": entry.get_response_time_percentile(0.95),
            "max": round(entry.max_response_time or 0, 1),
        })  # fmt: skip
    return rows


def seeder_of(environment: Any) -> Seeder:
    """This process's seeder, made and wired once.

    Not only from ``init``: a worker that joins a running test connects to the master before Locust
    fires ``init``, and the master may send it a spawn (``test_start``) in between.
    """
    seeder = getattr(environment, "kanta_seed", None)
    if seeder is None:
        seeder = Seeder(environment)
        environment.kanta_seed = seeder
        SEEDERS.append(seeder)
        seeder.wire()
    return seeder


def wait_for_seeder(environment: Any, timeout_s: float = 30.0) -> Seeder:
    """The seeder, once this process has one: a late worker's users may start before it is wired."""
    with gevent.Timeout(timeout_s, RuntimeError("kanta-seed was never set up in this process")):
        while getattr(environment, "kanta_seed", None) is None:
            gevent.sleep(0.01)
    seeder: Seeder = environment.kanta_seed
    return seeder
