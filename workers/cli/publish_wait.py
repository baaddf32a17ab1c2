"""``provisioner publish --file F --wait``: publish a file of events and follow what the
fleet makes of each line, until every line is answered (docs/operations.md, "Onboarding
a customer's users").

The result events are read from a queue of this run's own, bound before the first
publish.  The progress file (``F.progress``) lets a rerun of the same command resume by
the lines' idempotency keys; the failed lines (invalid, dead-lettered, not published) go
to ``F.failed``, fixed and fed back as a file of their own.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import time
from pathlib import Path
from typing import IO

from tqdm import tqdm

from messages import publisher
from messages.envelope import Envelope
from messages.errors import ContractError
from messages.json_input import read_lines
from messages.results import Outcome
from workers.broker import connection
from workers.broker.results_feed import ResultsFeed
from workers.cli.common import EXIT_FAILURE, EXIT_USAGE, public_key, say
from workers.ops.onboarding import (
    NOT_PUBLISHED,
    Progress,
    ProgressMismatch,
    Waiting,
    without_passwords,
)
from workers.runtime.settings import Settings

EXIT_INTERRUPTED = 130
LOG_EVERY_SECONDS = 5.0


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--wait: follow what the fleet makes of each line")
    group.add_argument(
        "--wait",
        action="store_true",
        help="with --file: wait for each line's result; resumable (see --progress)",
    )
    group.add_argument(
        "--progress",
        type=Path,
        help="the progress file that a rerun resumes from (default: FILE.progress)",
    )
    group.add_argument(
        "--failed", type=Path, help="where the failed lines go (default: FILE.failed)"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        help="give up after this many seconds without an answer (default: wait on)",
    )


@dataclasses.dataclass(frozen=True)
class Files:
    source: str
    progress: Path
    failed: Path

    @classmethod
    def of(cls, args: argparse.Namespace) -> Files | str:
        name = str(args.file.name)
        if name == "<stdin>" and (args.progress is None or args.failed is None):
            return "--wait on standard input needs --progress and --failed"
        return cls(
            name, args.progress or Path(f"{name}.progress"), args.failed or Path(f"{name}.failed")
        )


def run(settings: Settings, args: argparse.Namespace) -> int:
    files = Files.of(args)
    if isinstance(files, str):
        print(f"provisioner: {files}", file=sys.stderr)
        return EXIT_USAGE
    raw_lines = args.file.read().splitlines(keepends=True)
    progress = Progress.load(files.progress)
    try:
        return _run(settings, files, raw_lines, progress, args.timeout)
    except ProgressMismatch as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        progress.close()


def _run(
    settings: Settings, files: Files, raw_lines: list[str], progress: Progress, timeout: float
) -> int:
    started = time.monotonic()
    plan = _plan(settings, raw_lines, progress)
    with ResultsFeed(connection.results_parameters(settings), "publish") as feed:
        waiting = Waiting()
        for number, envelope in plan.to_publish:
            progress.assign(number, envelope)
            waiting.expect(envelope.idempotency_key, number)
        report = publisher.publish_all(connection.parameters(settings), iter(plan.to_publish))
        for number, reason in report.failed:
            waiting.drop(progress.lines[number].key, number)
            progress.answer(number, NOT_PUBLISHED, "not_published", reason)
        meter = _Meter(len(waiting), sys.stderr)
        try:
            answered_all = _follow(feed, waiting, progress, meter, timeout)
        except KeyboardInterrupt:
            meter.close()
            say(
                f"interrupted: {len(waiting)} line(s) published and not answered yet; "
                f"run the same command again to resume (progress in {files.progress})"
            )
            return EXIT_INTERRUPTED
        meter.close()
    failed = _write_failed(files, raw_lines, progress)
    seconds = time.monotonic() - started
    counts = waiting.counts
    answered = sum(counts.values())
    say(
        f"published {len(plan.to_publish) - len(report.failed)} ({plan.answered_before} answered "
        f"before: skipped): succeeded {counts[Outcome.SUCCEEDED]}, duplicate "
        f"{counts[Outcome.DUPLICATE]}, dead-lettered {counts[Outcome.DEAD_LETTERED]}, "
        f"not published {len(report.failed)}, invalid {len(plan.invalid)}, "
        f"not answered {len(waiting)}; {answered} answered in {seconds:.1f} s "
        f"({answered / seconds if seconds else 0:.1f}/s)"
    )
    if not answered_all:
        say(
            f"gave up after {timeout:g} s without an answer; run the same command again to "
            f"resume (progress in {files.progress})"
        )
    if failed:
        say(f"failed lines: {failed} in {files.failed} (fix them and publish that file)")
    return EXIT_FAILURE if failed or not answered_all else 0


@dataclasses.dataclass
class _Plan:
    to_publish: list[tuple[int, Envelope]] = dataclasses.field(default_factory=list)
    invalid: list[int] = dataclasses.field(default_factory=list)
    answered_before: int = 0  # lines an earlier run saw answered: skipped


def _plan(settings: Settings, raw_lines: list[str], progress: Progress) -> _Plan:
    plan = _Plan()
    for number, item in read_lines(io.StringIO("".join(raw_lines)), public_key(settings)):
        if isinstance(item, ContractError):
            progress.invalid(number, item.code, str(item))
            plan.invalid.append(number)
            continue
        known = progress.lines.get(number)
        key = progress.key_for(number, item)
        if known is not None and known.answered:
            plan.answered_before += 1
            continue
        same_key = item if key in {None, item.idempotency_key} else None
        plan.to_publish.append(
            (number, same_key or dataclasses.replace(item, idempotency_key=str(key)))
        )
    return plan


def _follow(
    feed: ResultsFeed, waiting: Waiting, progress: Progress, meter: _Meter, timeout: float
) -> bool:
    """Take results until every published line is answered; False on ``timeout``."""
    quiet_since = time.monotonic()
    for result in feed.results(idle_seconds=1.0):
        if not waiting:
            return True
        if result is None:
            meter.show(waiting)
            if timeout and time.monotonic() - quiet_since > timeout:
                return False
            continue
        number = waiting.take(result)
        quiet_since = time.monotonic()
        if number is not None:
            error = result.error
            progress.answer(
                number,
                result.outcome.value,
                error.code if error else "",
                error.message if error else "",
            )
            meter.answered()
        meter.show(waiting)
        if not waiting:
            return True
    return not waiting


class _Meter:
    """tqdm's bar on a terminal; elsewhere (a log, a pipe) the same figures as a line
    every few seconds."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self._last_line = self._started
        self._done = 0
        self._total = total
        self._bar = (
            tqdm(total=total, unit="line", file=stream, dynamic_ncols=True) if self._tty else None
        )

    def answered(self) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)

    def show(self, waiting: Waiting) -> None:
        counts = waiting.counts
        postfix = (
            f"succeeded={counts[Outcome.SUCCEEDED]}, duplicate={counts[Outcome.DUPLICATE]}, "
            f"retrying={len(waiting.retrying)}, dead-lettered={counts[Outcome.DEAD_LETTERED]}"
        )
        if self._bar is not None:
            self._bar.set_postfix_str(postfix, refresh=True)
            return
        now = time.monotonic()
        if now - self._last_line >= LOG_EVERY_SECONDS:
            self._last_line = now
            line = tqdm.format_meter(
                self._done, self._total, now - self._started, unit="line", postfix=postfix, ncols=0
            )
            print(line, file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _write_failed(files: Files, raw_lines: list[str], progress: Progress) -> int:
    """Every failed line (this run's and earlier runs'), passwords left out; how many."""
    failed = sorted(n for n, line in progress.lines.items() if line.failed)
    files.failed.unlink(missing_ok=True)
    if not failed:
        return 0
    out: list[str] = []
    for number in failed:
        line = progress.lines[number]
        text, had_password = without_passwords(raw_lines[number - 1])
        note = " (its password is left out of the failed file)" if had_password else ""
        print(f"line {number}: {line.outcome}: {line.code}: {line.reason}{note}", file=sys.stderr)
        if text is not None:
            out.append(text + "\n")
    files.failed.write_text("".join(out), encoding="utf-8")
    return len(failed)
