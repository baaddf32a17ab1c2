"""The page's routes.  Flask (server-rendered Jinja2 templates, escaped by default) and
Flask-WTF's CSRF protection: the library calls behind it are synchronous, one short
broker or directory conversation per request, so a plain WSGI app on waitress fits, and
neither a JavaScript front end nor an async stack would add anything but weight.

Every request needs the operator's credential (HTTP Basic); every POST needs the CSRF
token of the page it came from, tied to a session cookie that is ``SameSite=Strict`` and
``HttpOnly``.  Nothing is shown or done anonymously.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response as BaseResponse

from workers.broker.connection import BrokerError
from workers.broker.connection import parameters as broker_parameters
from workers.broker.dead_letter_queue import DeadLetterQueue
from workers.console import dead_letters, status_reading
from workers.ops.dead_letter_view import Filter, groups, redacted_body
from workers.ops.fleet_status import BOOTSTRAPPED, problems
from workers.runtime.settings import Settings

USER = "operator"
DEFAULT_RATE = 10.0
MAX_RATE = 200.0
REALM = 'Basic realm="provisioner ops", charset="UTF-8"'


def create_app(
    settings: Settings,
    password: str,
    queue: Callable[[], DeadLetterQueue] | None = None,
    workers: list[str] | None = None,
) -> Flask:
    """The page for ``settings``; ``password`` is the operator's (never empty)."""
    if not password:
        raise ValueError("the operator's password is empty")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),  # sessions (and CSRF tokens) end with the process
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        WTF_CSRF_TIME_LIMIT=3600,
    )
    _guard(app, password)  # first: an anonymous request learns nothing, not even of CSRF
    CSRFProtect(app)
    open_queue = queue or (lambda: DeadLetterQueue(broker_parameters(settings)))
    _reading_routes(app, settings, open_queue, workers)
    _acting_routes(app, settings, open_queue)
    return app


def _guard(app: Flask, password: str) -> None:
    """The operator's credential on every request; headers that keep the page in its own
    window; a refused CSRF token said plainly."""

    @app.before_request
    def authenticate() -> BaseResponse | None:
        auth = request.authorization
        given = (auth.username or "", auth.password or "") if auth else ("", "")
        user_ok = hmac.compare_digest(given[0].encode(), USER.encode())
        password_ok = hmac.compare_digest(given[1].encode(), password.encode())
        if not (user_ok and password_ok):
            return Response(
                "the operator's credential is needed\n",
                401,
                {"WWW-Authenticate": REALM, "Content-Type": "text/plain; charset=utf-8"},
            )
        return None

    @app.after_request
    def harden(response: BaseResponse) -> BaseResponse:
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'unsafe-inline'"
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.errorhandler(CSRFError)
    def refused(error: CSRFError) -> tuple[str, int]:
        return f"refused: {error.description}\n", 400

    @app.template_filter("when")
    def when(moment: datetime | None) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _reading_routes(
    app: Flask,
    settings: Settings,
    open_queue: Callable[[], DeadLetterQueue],
    workers: list[str] | None,
) -> None:
    @app.get("/")
    def home() -> str:
        try:
            letters = list(open_queue().letters())  # read once, for the status and the groups
        except (BrokerError, OSError):
            letters = None  # the status says the broker does not answer
        status = status_reading.gather(settings, workers, letters)
        return render_template(
            "home.html",
            status=status,
            problems=problems(status),
            groups=groups(letters or []),
            bootstrapped=BOOTSTRAPPED,
        )

    @app.get("/dead-letters")
    def letters() -> str:
        selection = _selection(request.args)
        return render_template(
            "letters.html",
            letters=dead_letters.chosen(open_queue(), selection),
            selection=selection,
            filtered=not selection.empty(),
        )

    @app.get("/dead-letters/<name>")
    def letter(name: str) -> str:
        found = [x for x in open_queue().letters() if x.known_as(name)]
        if not found:
            abort(404, f"no dead letter is known as {name}")
        shown = found[0]
        return render_template(
            "letter.html",
            x=shown,
            selection=Filter(ids=frozenset({shown.id})),
            attempts=shown.headers.get("x-attempts", []),
            traceback=shown.headers.get("x-traceback"),
            body=json.dumps(redacted_body(shown.body), indent=2, ensure_ascii=False, default=str),
        )


def _acting_routes(
    app: Flask, settings: Settings, open_queue: Callable[[], DeadLetterQueue]
) -> None:
    """Replay (a dry-run preview first) and discard (a confirmation first): each POST
    passes the CSRF check before it gets here."""

    @app.post("/replay/preview")
    def replay_preview() -> str:
        selection = _chosen_or_400(request.form)
        previews = dead_letters.preview(dead_letters.chosen(open_queue(), selection), settings)
        if not previews:
            abort(404, "no dead letter matches")
        return render_template("replay.html", previews=previews, rate=f"{DEFAULT_RATE:g}")

    @app.post("/replay")
    def replay() -> BaseResponse:
        ids = frozenset(request.form.getlist("ids"))
        if not ids:
            abort(400, "name the dead letters to replay")
        selection = Filter(ids=ids)
        rate = _rate(request.form.get("rate", ""))
        replayed = dead_letters.replay(open_queue(), selection, rate)
        flash(f"replayed {replayed} dead letter(s)" if replayed else "no dead letter matches")
        return redirect(url_for("home"), 303)

    @app.post("/discard/confirm")
    def discard_confirm() -> str:
        selection = _chosen_or_400(request.form)
        chosen = dead_letters.chosen(open_queue(), selection)
        if not chosen:
            abort(404, "no dead letter matches")
        return render_template("discard.html", letters=chosen)

    @app.post("/discard")
    def discard() -> BaseResponse:
        ids = set(request.form.getlist("ids"))
        if not ids:
            abort(400, "name the dead letters to discard")
        flash(f"discarded {dead_letters.discard(open_queue(), ids)} dead letter(s)")
        return redirect(url_for("home"), 303)


def _selection(form: Any) -> Filter:
    return Filter(
        ids=frozenset(x for x in form.getlist("ids") if x),
        type=form.get("type") or None,
        tenant=form.get("tenant") or None,
        error=form.get("error") or None,
    )


def _chosen_or_400(form: Any) -> Filter:
    selection = _selection(form)
    if selection.empty():
        abort(400, "name dead letters by id or by filter")
    return selection


def _rate(text: str) -> float:
    try:
        rate = float(text or DEFAULT_RATE)
    except ValueError:
        abort(400, f"{text!r} is not a rate")
    if not 0 < rate <= MAX_RATE:
        abort(400, f"a rate is more than 0 and at most {MAX_RATE:g} a second")
    return rate
