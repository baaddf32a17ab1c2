"""Which producer may ask for what: the producer policy, and its check.  Pure.

A producer is a broker user.  RabbitMQ authenticates it on its connection and validates
the ``user_id`` property against it, so ``user_id`` is a name nobody can forge; copies
the fleet makes (retries, dead letters, replays) keep it, because only the fleet's own
accounts are allowed to carry a ``user_id`` that is not theirs.  The worker then checks
the policy, ``PROVISIONER_PRODUCER_POLICY``::

    USER=TYPE,TYPE;USER=TYPE,...

for example ``order=tenant.created,tenant.updated,tenant.deleted;billing=tenant.suspended,
tenant.resumed``.  A message with no ``user_id``, from a user the policy does not name,
or of a type its producer may not publish, is refused as ``unauthorized_producer``
before anything is read from or written to the directory.  The same table is the
broker's topic permissions (``deploy/local/platform`` sets both): the broker refuses a
routing key, and the worker refuses an event type, whatever the routing key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from messages.events import CATALOGUE

UNAUTHORIZED = "unauthorized_producer"


class PolicyError(ValueError):
    """The policy's text does not parse, or names an unknown event type."""


class Unauthorized(Exception):
    """This producer may not ask for this; ``str()`` says why, for the dead letter."""

    code = UNAUTHORIZED


@dataclass(frozen=True)
class ProducerPolicy:
    allowed: Mapping[str, frozenset[str]]

    @classmethod
    def parse(cls, text: str) -> ProducerPolicy:
        allowed: dict[str, frozenset[str]] = {}
        for clause in filter(None, (c.strip() for c in text.split(";"))):
            user, equals, types_text = clause.partition("=")
            user = user.strip()
            if not equals or not user:
                raise PolicyError(f"{clause!r} is not USER=TYPE,TYPE")
            if user in allowed:
                raise PolicyError(f"producer {user!r} is named twice")
            types = frozenset(filter(None, (t.strip() for t in types_text.split(","))))
            unknown = sorted(types - set(CATALOGUE))
            if unknown:
                raise PolicyError(f"producer {user!r}: unknown event type(s) {', '.join(unknown)}")
            allowed[user] = types
        return cls(MappingProxyType(allowed))

    def text(self) -> str:
        """The policy in the form :meth:`parse` reads."""
        return ";".join(f"{user}={','.join(sorted(t))}" for user, t in self.allowed.items())

    def check_producer(self, user_id: str | None) -> str:
        """The producer, if the policy knows it; else :class:`Unauthorized`."""
        if not user_id:
            raise Unauthorized(
                "the message has no user_id: it cannot be told who published it "
                "(set user_id to the broker user you connect as)"
            )
        if user_id not in self.allowed:
            raise Unauthorized(f"producer {user_id!r} may publish no event type")
        return user_id

    def check_type(self, user_id: str, event_type: str) -> None:
        allowed = self.allowed.get(user_id, frozenset())
        if event_type not in allowed:
            shown = ", ".join(sorted(allowed)) or "none"
            raise Unauthorized(
                f"producer {user_id!r} may not publish {event_type} (it may publish: {shown})"
            )
