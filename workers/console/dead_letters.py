"""Dead letters chosen, previewed, replayed and discarded: the one implementation behind
``provisioner dlq`` and the web page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from messages.envelope import decode
from messages.errors import ContractError
from workers.broker.dead_letter_queue import DeadLetterQueue, RateLimit, republish
from workers.directory.ldap_directory import LdapDirectory
from workers.ops import dry_run
from workers.ops.dead_letter_view import DeadLetter, Filter
from workers.provisioning.realm import read_realm
from workers.runtime.settings import Settings


def chosen(queue: DeadLetterQueue, selection: Filter) -> list[DeadLetter]:
    return [x for x in queue.letters() if selection.matches(x)]


def replay(
    queue: DeadLetterQueue,
    selection: Filter,
    rate: float | None = None,
    on_replayed: Callable[[DeadLetter], None] | None = None,
) -> int:
    """Put the chosen dead letters back into the work queue (each confirmed, then acked),
    at most ``rate`` a second; how many."""
    limit = RateLimit(rate)
    replayed = 0
    with queue.pass_over() as (channel, held):
        for item in held:
            if selection.matches(item.letter):
                limit.wait()
                republish(channel, item)
                replayed += 1
                if on_replayed is not None:
                    on_replayed(item.letter)
    return replayed


def discard(queue: DeadLetterQueue, ids: set[str]) -> int:
    """Delete exactly the dead letters of ``ids`` (counted and shown to the operator
    before): one that arrived since is kept even if it matches the same filter."""
    discarded = 0
    with queue.pass_over() as (channel, held):
        for item in held:
            if item.letter.id in ids:
                channel.basic_ack(item.delivery_tag)
                discarded += 1
    return discarded


@dataclass(frozen=True)
class Preview:
    letter: DeadLetter
    lines: list[str]  # what a replay would do to the directory now


def preview(letters: list[DeadLetter], settings: Settings) -> list[Preview]:
    """What replaying each of ``letters`` would do to the directory now (the dry run)."""
    if not letters:
        return []
    out = []
    with LdapDirectory.connect(settings) as directory:
        realm = read_realm(directory, settings.ldap_bind_dn)
        for letter in letters:
            try:
                envelope = decode(letter.body)
            except ContractError as exc:
                out.append(Preview(letter, [f"would fail again: {exc}"]))
                continue
            out.append(
                Preview(letter, list(dry_run.describe(envelope, directory, realm, settings)))
            )
    return out
