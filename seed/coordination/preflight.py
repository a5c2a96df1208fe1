"""Everything checked before the first upload: options, output paths, baselines, data set, host, and
what the event already holds. Nothing half-done.

``prepare`` either returns a ready ``Plan`` (the data set indexed, the event looked at) or
raises ``BadInput`` with one message that says what is wrong and how to fix it; where several
things are wrong at once, it names them all.
"""

from __future__ import annotations

import copy
import hashlib
import os
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gevent

from seed.coordination import checks
from seed.coordination.options import DEFAULT_DATA, Settings, problems
from seed.core import gate
from seed.core import ledger as ledgers
from seed.core.dataset import Dataset, DatasetError, load, stamp, synthetic
from seed.core.words import counted
from seed.kanta import contract as kanta
from seed.kanta.client import KantaClient, Transport, urllib_transport
from seed.kanta.contract import Upload

HEALTH_TIMEOUT_S = 5.0
PROJECT_DIR = Path(__file__).resolve().parent.parent  # its data/ is the second place looked in
RUN_TAG_LEN = 6


class BadInput(ValueError):
    """The run cannot start; the message is meant for the user as it is."""


@dataclass(frozen=True)
class Plan:
    settings: Settings
    dataset: Dataset
    uploads: tuple[Upload, ...]  # every upload of the run: loops x images (see for_tag); no bodies
    ledger_path: Path | None = None  # None: no ledger (a --standin run dies with its server)
    memory: ledgers.Memory = field(default_factory=ledgers.Memory)  # what an earlier run left
    pre_existing: dict[str, frozenset[str]] = field(default_factory=dict)  # event -> held before seeding
    present: dict[int, str] = field(default_factory=dict)  # upload index -> its copy the event already held
    remove: dict[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # event -> data set copies to delete first
    foreign: dict[str, int] = field(
        default_factory=dict
    )  # event -> images it holds that are not the data set's
    notes: tuple[str, ...] = ()  # said before the first upload
    run_tag: str = ""  # names a --bench run's events (new for every run)

    @property
    def event_codes(self) -> list[str]:
        return list(dict.fromkeys(u.event_code for u in self.uploads))

    @property
    def resuming(self) -> bool:
        return not self.memory.empty

    @property
    def data_set_key(self) -> str:
        """What a ledger chain is of: the members, their content and the passes. Only a run of the same
        resumes it; another data set in the same event is no resume of it."""
        key = hashlib.sha256(f"loops {self.settings.loops}\n".encode())
        for img in self.dataset.images:
            key.update(f"{img.member}\t{img.sha256}\n".encode())
        return key.hexdigest()[:16]

    def digest(self, index: int) -> str:
        return self.dataset.images[index % len(self.dataset.images)].sha256

    def member(self, index: int) -> str:
        """The ledger's name of an upload: the member path, with its pass when there are several."""
        n = len(self.dataset.images)
        member = self.dataset.images[index % n].member
        return member if self.settings.loops == 1 else f"{member}@pass{index // n + 1}"

    def for_tag(self, run_tag: str) -> Plan:
        """The uploads of a run: a --bench run's events are its own (<code>-<tag>, or <code>-<tag>-<pass>
        with --loops); a seed run's passes all go to the one event."""
        s = self.settings
        codes = [bench_event(s.event_code, run_tag, n, s.loops) if s.mode == "bench" else s.event_code
                 for n in range(1, s.loops + 1)]  # fmt: skip
        images = self.uploads[: len(self.dataset.images)]
        uploads = tuple(
            replace(u, index=p * len(images) + u.index, event_code=code)
            for p, code in enumerate(codes)
            for u in images
        )
        return replace(self, uploads=uploads, run_tag=run_tag)


def bench_event(code: str, run_tag: str, n: int, loops: int) -> str:
    return f"{code}-{run_tag}" if loops == 1 else f"{code}-{run_tag}-{n}"


# --- the pieces ----------------------------------------------------------------------------------------
def check_settings(settings: Settings) -> None:
    found = []
    code_problems = kanta.event_code_problems(settings.event_code)
    if code_problems:
        found.append(f"--event-code {settings.event_code!r} " + "; ".join(code_problems))
    host_problem = kanta.host_problem(settings.host)
    if host_problem:
        found.append(f"host {settings.host!r} {host_problem} (-H/--host)")
    found += problems(settings)
    longest = bench_event(settings.event_code, "f" * RUN_TAG_LEN, settings.loops, settings.loops)
    if settings.mode == "bench" and len(longest) > kanta.CODE_MAX:
        found.append(
            f"--event-code {settings.event_code!r} is too long for --bench: its events"
            f" ({longest}) must stay within {kanta.CODE_MAX} characters"
        )
    if found:
        raise BadInput("; ".join(found) if len(found) > 1 else found[0])


def check_output(flag: str, path: str, suffixes: tuple[str, ...] = ("",)) -> str | None:
    """Why the run could not write here (checked before it starts, not after an hour of uploads)."""
    for suffix in suffixes:
        target = Path(path + suffix).expanduser()
        if target.is_dir():
            return f"{flag} {path!r} is a folder; give a file path"
        if target.exists() and not os.access(target, os.W_OK):
            return f"{flag} {path!r} is not writable"
        parent = target.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            return f"{flag} {path!r}: cannot create files in {parent}"
    return None


def check_outputs(settings: Settings, locust_outputs: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    wanted: dict[str, tuple[str, tuple[str, ...]]] = {
        "--summary-json": (settings.summary_json, ("",)),
        "--summary-md": (settings.summary_md, ("",)),
        "--report-html": (settings.report_html, ("",)),
        "--junit": (settings.junit, ("",)),
    }
    wanted.update(locust_outputs)
    history = Path(settings.history).expanduser() if settings.history else None
    if history is not None and history.exists() and not history.is_dir():
        raise BadInput(f"--history {settings.history!r} is a file; give a folder (made when missing)")
    found = [
        why
        for flag, (path, suffixes) in wanted.items()
        if path and (why := check_output(flag, path, suffixes))
    ]
    if found:
        raise BadInput("; ".join(found))


def check_baselines(settings: Settings) -> dict[str, Any] | None:
    """The newest baseline run named by file (None without --baseline, or when it names only history
    folders: which of their runs compare is known at the end); unreadable or of another schema: refused."""
    history = Path(settings.history).expanduser() if settings.history else None
    files = [
        p for p in settings.baselines if not Path(p).expanduser().is_dir() and Path(p).expanduser() != history
    ]
    if not files:
        return None
    try:
        return gate.load_baselines(files)[-1]
    except gate.BaselineError as e:
        raise BadInput(f"--baseline: {e}") from e


def check_baseline_fits(plan: Plan, baseline: dict[str, Any] | None, users: int | None) -> None:
    """A baseline of another data set, size, -u or kind of host is refused before the run, not after it."""
    s = plan.settings
    if baseline is None or s.force_compare:
        return
    planned: dict[str, object] = {
        "data_set": plan.dataset.source,
        "images": len(plan.uploads),  # every pass's: the summary counts them so
        "host": s.host,
        "mode": s.mode,
    }
    if users is not None:
        planned["users"] = users
    differences = checks.comparable_at_start(planned, baseline)
    if differences:
        raise BadInput(
            f"--baseline measured something else ({'; '.join(differences)}); run as the baseline was run,"
            " make a new baseline, or pass --force-compare to compare anyway"
        )


def resolve_data_path(settings: Settings, project_dir: Path) -> Path | None:
    """The data set to load: --images, else data/yale_png.zip (here or beside the project), else None."""
    if settings.images:
        return Path(settings.images).expanduser()
    for candidate in (Path.cwd() / DEFAULT_DATA, project_dir / DEFAULT_DATA):
        if candidate.is_file():
            return candidate
    return None


# The last data set this process indexed, reused while its files stay the same: a headless --standin run
# prepares twice, and a web UI's every run prepares again (a 5 GB folder takes seconds to index).
_indexed: dict[str, tuple[str, Dataset]] = {}


def index(path: Path) -> Dataset:
    """The data set's index (load), yielding to other greenlets after each member."""
    key, now = str(path), stamp(path)
    known = _indexed.get(key)
    if known is not None and now and known[0] == now:
        return known[1]
    dataset = load(path, tick=gevent.sleep)
    _indexed.clear()
    if now:
        _indexed[key] = (now, dataset)
    return dataset


def load_dataset(settings: Settings, project_dir: Path) -> Dataset:
    path = resolve_data_path(settings, project_dir)
    if path is None:
        if settings.standin:
            return synthetic()
        raise BadInput(
            f"no data set: put yale_png.zip at {DEFAULT_DATA} (in the working folder or the project) or pass"
            " --images PATH (or add --standin to try the built-in synthetic set on a local stand-in)"
        )
    try:
        dataset = index(path)
    except DatasetError as e:
        raise BadInput(str(e)) from e
    if settings.strict and dataset.skipped:
        named = "; ".join(f"{k.member}: {k.reason}" for k in dataset.skipped[:5])
        more = f" and {len(dataset.skipped) - 5} more" if len(dataset.skipped) > 5 else ""
        raise BadInput(
            f"--strict: {counted(len(dataset.skipped), 'member')} of {path} would be skipped ({named}{more});"
            " remove them from the data set, or run without --strict to skip them"
        )
    return dataset


def check_reachable(client: KantaClient) -> None:
    """Fail fast when nothing answers at the host, or what answers is not Kanta: its health route answers
    ``{"status": "ok"}`` and its events route a list of events (docs/kanta-contract.md)."""
    answer = client.health()
    if answer.status == 0:
        raise BadInput(
            f"nothing answers at {client.host} ({answer.error}); start Kanta there, pass -H URL,"
            " or add --standin"
        )
    not_kanta = client.not_kanta(answer)
    if not_kanta:
        raise BadInput(f"{client.host} is not Kanta: {not_kanta}; pass -H with Kanta's URL, or add --standin")


def uploads_of(dataset: Dataset, event_code: str) -> tuple[Upload, ...]:
    """One upload per image, without its body: each body is read and encoded when it is sent."""
    return tuple(Upload(i, img.member, event_code) for i, img in enumerate(dataset.images))


def ledger_path(settings: Settings) -> Path | None:
    if settings.mode == "bench":
        return None  # a bench run never resumes: every run measures a whole upload into new events
    if settings.ledger:
        return Path(settings.ledger).expanduser()
    if settings.standin:
        return None  # a --standin server dies with the process: its web UI runs resume from memory
    return ledgers.default_path(settings.host, settings.event_code)


def look_at_events(plan: Plan, client: KantaClient) -> Plan:
    """What the run's events hold before the first upload, and what the run will do about it.

    seed: a resumed run knows its copies from its ledger; any other run sorts what the event holds by
    content: copies of the data set count (uploaded again only if missing; --fresh removes them first;
    copies beyond what the data set needs are removed), other images are refused unless --allow-existing,
    and never touched. bench: the run's events are new, and must be empty.
    """
    s = plan.settings
    memory = plan.memory
    pre_existing: dict[str, frozenset[str]] = {}
    notes: list[str] = list(plan.notes)
    present: dict[int, str] = {}
    remove: dict[str, tuple[str, ...]] = {}
    foreign_count: dict[str, int] = {}
    for code in plan.event_codes:
        listing = client.list_event(code)
        if listing is None:
            problem = client.list_problem or "unreadable"
            hint = (
                "is Kanta up, or busy draining a backlog? try again once it answers"
                if problem.startswith("no answer")
                else "is it Kanta?"
            )
            raise BadInput(
                f"cannot read the images of event {code} at {s.host} (GET /pics: {problem}); {hint}"
            )
        if plan.resuming:
            pre_existing[code] = frozenset(memory.pre_existing.get(code, set()))
            continue
        pre_existing[code] = frozenset(listing)
        if not listing:
            continue
        where = f"event {code} at {s.host}"
        if s.mode == "bench":
            raise BadInput(f"{where} already holds {len(listing)} images; a --bench run needs a new event")
        digests = {u: client.blob_digest(listing[u].blob_url) for u in listing}
        unread = sum(1 for d in digests.values() if d is None)
        if unread:
            raise BadInput(
                f"{where} already holds {len(listing)} images, and {unread} of their blobs could not be read,"
                " so which are the data set's cannot be told; pass --blob-host HOST[:PORT]"
            )
        uploads = [u for u in plan.uploads if u.event_code == code]
        need = Counter(plan.digest(u.index) for u in uploads)
        pool: dict[str, list[str]] = defaultdict(list)
        for uid, d in digests.items():
            if d is not None and d in need:
                pool[d].append(uid)
        foreign = sum(1 for d in digests.values() if d not in need)
        found = sum(map(len, pool.values()))
        if foreign and not s.allow_existing:
            raise BadInput(
                f"{where} holds {foreign} images that are not the data set's (and {found} copies of it);"
                " pass --allow-existing to seed beside them (they are left untouched), or another"
                " --event-code"
            )
        ours: dict[int, str] = {}
        for up in uploads:
            if pool[plan.digest(up.index)]:
                ours[up.index] = pool[plan.digest(up.index)].pop(0)
        surplus = tuple(uid for uids in pool.values() for uid in uids)
        other = f"; {foreign} other images there are left untouched" if foreign else ""
        if s.fresh:
            remove[code] = (*ours.values(), *surplus)
            notes.append(
                f"{where} holds {found} copies of the data set: --fresh removes them, then uploads all"
                f" {len(uploads)}{other}"
            )
        else:
            present.update(ours)
            remove[code] = surplus
            extra = f"; removing {len(surplus)} extra copies (the data set is wanted once)" if surplus else ""
            lacking = len(uploads) - len(ours)
            todo = f"uploading the {lacking} it lacks" if lacking else "nothing to upload, verifying them"
            notes.append(
                f"{where} already holds {len(ours)} of the {len(uploads)} images (by content):"
                f" {todo}{extra}{other}"
            )
        foreign_count[code] = foreign
    return replace(
        plan,
        pre_existing=pre_existing,
        present=present,
        remove=remove,
        foreign=foreign_count,
        notes=tuple(notes),
    )


def prepare(
    settings: Settings,
    project_dir: Path = PROJECT_DIR,
    reach: bool = True,
    transport: Transport = urllib_transport,
    locust_outputs: dict[str, tuple[str, tuple[str, ...]]] | None = None,
    remembered: ledgers.Memory | None = None,
    users: int | None = None,
) -> Plan:
    """Validate everything, index the data set, look at the events; raises BadInput.

    remembered: what this process's earlier runs did, where no ledger file is kept (a --standin web UI).
    users: Locust's -u when it is known before the run (headless), to hold against a baseline.
    """
    check_settings(settings)
    check_outputs(settings, locust_outputs or {})
    baseline = check_baselines(settings)
    dataset = load_dataset(settings, project_dir)
    path = ledger_path(settings)
    if path is not None and (found := check_output("--ledger", str(path))):
        raise BadInput(found)
    # Every start path (a rerun, the web UI's NEW) resumes what the ledger or this process remembers,
    # except a reset (--fresh) and a benchmark, which always uploads everything.
    memory = ledgers.Memory()
    if settings.mode == "seed" and not settings.fresh:
        memory = ledgers.read(path) if path is not None else copy.deepcopy(remembered or ledgers.Memory())
    plan = Plan(settings, dataset, uploads_of(dataset, settings.event_code), path, memory)
    if memory.data_set and memory.data_set != plan.data_set_key:
        # The ledger remembers another data set (or --loops) in this event: no resume. A new chain
        # starts, and what the event holds is sorted by content like any image already there.
        plan = replace(plan, memory=ledgers.Memory())
    plan = plan.for_tag(uuid.uuid4().hex[:RUN_TAG_LEN])
    check_baseline_fits(plan, baseline, users)
    if not reach:
        return plan
    client = KantaClient(settings.host, transport, settings.blob_host, timeout_s=HEALTH_TIMEOUT_S)
    check_reachable(client)
    # Listing waits for a DB connection: a Kanta still draining an earlier run's backlog (the rerun
    # that resumes a stopped run) answers it slowly, though its health answers at once.
    client.timeout_s = max(HEALTH_TIMEOUT_S, settings.request_timeout)
    return look_at_events(plan, client)
