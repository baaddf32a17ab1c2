"""The platform script's RabbitMQ calls, read as text.

A RabbitMQ CLI tool called bare goes to the machine's default node, which answers only
where a broker happened to be running already; the script's own node (started where
nothing answered) has another name.  So every call goes through `rabbit` (the platform's
broker, whichever it is) or names the script's own node, and the Python tools call the
script's `rabbitmqctl` subcommand.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local" / "platform"
TOOLS = r"(rabbitmqctl|rabbitmq-plugins|rabbitmq-diagnostics)"
# A tool as a command word: at the start of a command, or after a wrapper that runs it.
CALL = re.compile(rf"(^|[;&|(]|\bthen|\bdo|\btimeout \d+|\bexec)\s*(?P<prefix>(\S+ )*?){TOOLS}\s")
AIMED = re.compile(
    rf"(\brabbit |\bown_broker |\"\$\{{OWN_BROKER\[@\]\}}\" "
    rf"|\bcluster_ctl \S+ |\bcluster_ctl_within \S+ \S+ ){TOOLS}\b"
)


def bare_calls(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        code = line.split(" #", 1)[0]
        if code.lstrip().startswith("#") or not re.search(rf"\b{TOOLS}\s", code):
            continue
        if CALL.search(code) and not AIMED.search(code):
            found.append(line.strip())
    return found


def test_every_rabbitmq_call_of_the_script_is_aimed_at_the_platforms_broker() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    assert "rabbit rabbitmqctl -q add_vhost" in script  # positive control: calls are read
    assert bare_calls(script) == []


def test_the_check_finds_a_bare_call() -> None:
    assert bare_calls('  rabbitmqctl -q add_vhost "$VHOST" >/dev/null') != []
    assert bare_calls("  timeout 9 rabbitmq-diagnostics -q ping") != []
    assert bare_calls('  rabbit rabbitmqctl -q add_vhost "$VHOST"') == []


def test_python_tools_call_no_rabbitmq_cli_directly() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("workers", "messages", "bench", "tests")
        for path in (REPO / folder).rglob("*.py")
        if re.search(r"\[\s*[\"']rabbitmqctl[\"']", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
