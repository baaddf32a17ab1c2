"""The operator's web page (``provisioner ops serve``) in headless Chromium (Debian's, driven
by Playwright), against the real broker, a real worker and the real DC.

A real dead letter (a user over its tenant's plan) is found from the page, previewed and
replayed once the plan has room, and the user is then read back from the DC as
Administrator.  Without the credential nothing is shown or done; with it, a POST without
the page's CSRF token is refused; each refusal beside the same connection's positive
control.  Screenshots of the main views go to ``$PROVISIONER_SCREENSHOTS`` (the ones in
docs/screenshots/ were taken so), else to the test's own directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ldap3
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.integration.test_metrics import free_port
from tests.support import broker, engine, ldap_oracle
from tests.support.platform import PROVISIONER, SuitePlatform, wait_for

CHROMIUM = "/usr/bin/chromium"
# As the machine's notes say Chromium must start here: no background traffic to the
# closed network, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASE = "DC=hosting,DC=test"


@dataclass(frozen=True)
class Served:
    url: str
    password: str


@pytest.fixture(scope="module")
def worker_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def fleet(
    platform: SuitePlatform, worker_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    log = tmp_path_factory.mktemp("ops-fleet") / "worker.log"
    with platform.worker(log, {"PROVISIONER_METRICS_PORT": str(worker_port)}):
        yield
    broker.purge(broker.DLQ)


@pytest.fixture(scope="module")
def served(
    platform: SuitePlatform, worker_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    port = free_port()
    env = platform.provisioner_env(
        {"PROVISIONER_OPS_PORT": str(port), "PROVISIONER_OPS_ADDRESS": "127.0.0.1"}
    )
    log = tmp_path_factory.mktemp("ops-serve") / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PROVISIONER), "ops", "serve", "--worker", f"http://127.0.0.1:{worker_port}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            urllib.request.urlopen(url, timeout=1).close()
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code == 401
        except OSError:
            return False
        return False

    try:
        wait_for(answers, timeout=30)
        password = Path(env["PROVISIONER_OPS_PASSWORD_FILE"]).read_text().strip()
        yield Served(url, password)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def operator(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    context = browser.new_context(
        http_credentials={"username": "operator", "password": served.password},
        viewport={"width": 1280, "height": 860},
    )
    yield context
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("PROVISIONER_SCREENSHOTS", str(tmp_path)))
    where.mkdir(parents=True, exist_ok=True)
    return where


def dead_letter_over_plan(platform: SuitePlatform, tmp_path: Path) -> tuple[str, str]:
    """A tenant with room for its admin only, and a user.created for it, dead-lettered by
    the running worker as ``quota_exceeded``: (tenant, the dead letter's idempotency key)."""
    tenant = engine.create_tenant(platform, "op", "Op-Admin-Passw0rd!", max_users=1)
    key = f"{tenant}-u1"
    line = {
        "type": "user.created",
        "idempotency_key": key,
        "data": {"tenant": tenant, "username": "late.joiner", "given_name": "L", "surname": "J"},
    }
    source = tmp_path / "users.jsonl"
    source.write_text(json.dumps(line) + "\n")
    done = platform.provisioner("publish", "--file", str(source), "--wait", "--timeout", "60")
    assert "dead-lettered 1" in done.stdout, done.stdout + done.stderr
    return tenant, key


def letters_of(platform: SuitePlatform, tenant: str) -> list[dict[str, object]]:
    listed = platform.provisioner("dlq", "list", "--tenant", tenant, "--json")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(x) for x in listed.stdout.splitlines() if x.strip()]


def user_exists(admin: ldap3.Connection, tenant: str, username: str) -> bool:
    dn = f"CN={username},OU={tenant},OU=Tenants,{BASE}"
    return ldap_oracle.read(admin, dn, ["cn"]) is not None


@pytest.mark.usefixtures("fleet")
def test_a_dead_letter_found_previewed_and_replayed_from_the_page_succeeds(
    platform: SuitePlatform,
    admin: ldap3.Connection,
    operator: BrowserContext,
    served: Served,
    shots: Path,
    tmp_path: Path,
) -> None:
    tenant, key = dead_letter_over_plan(platform, tmp_path)
    assert not user_exists(admin, tenant, "late.joiner")
    page: Page = operator.new_page()

    home = page.goto(served.url)
    assert home is not None
    assert home.status == 200
    group = page.locator("#groups tr", has_text="quota_exceeded")
    assert group.count() == 1
    assert page.locator("#dcs").inner_text().count("reachable, bootstrap in place") == 1
    assert "yes" in page.locator("#workers").inner_text()
    page.screenshot(path=str(shots / "ops-home.png"), full_page=True)

    group.get_by_role("link", name="quota_exceeded").click()
    row = page.locator("#letters tr", has_text=tenant)
    assert row.count() == 1
    row.get_by_role("link").click()
    assert "quota_exceeded: tenant" in page.locator("#error").inner_text()
    assert key in page.locator("#letter").inner_text()
    page.screenshot(path=str(shots / "ops-dead-letter.png"), full_page=True)

    # Still over the plan: the preview says the replay would fail again.  Raise the plan,
    # preview again: it would now make the user.
    engine.run(
        platform,
        engine.event(
            platform,
            "tenant.updated",
            {"tenant": tenant, "plan": {"max_users": 2}},
            f"{tenant}-raise",
        ),
    )
    page.get_by_role("button", name="Replay…").click()
    preview = page.locator("pre.preview").inner_text()
    assert "[to do]" in preview, preview
    page.screenshot(path=str(shots / "ops-replay-preview.png"), full_page=True)
    assert not user_exists(admin, tenant, "late.joiner"), "a preview writes nothing"

    page.locator("#confirm-replay").click()
    assert page.get_by_role("status").inner_text() == "replayed 1 dead letter(s)"
    wait_for(lambda: user_exists(admin, tenant, "late.joiner"), timeout=30)
    assert letters_of(platform, tenant) == []
    upn = ldap_oracle.read(
        admin, f"CN=late.joiner,OU={tenant},OU=Tenants,{BASE}", ["userPrincipalName"]
    )
    assert upn == {"userPrincipalName": [f"late.joiner@{tenant}.example"]}


@pytest.mark.usefixtures("fleet")
def test_nothing_is_shown_or_done_without_the_credential_or_the_page_token(
    platform: SuitePlatform,
    browser: Browser,
    operator: BrowserContext,
    served: Served,
    tmp_path: Path,
) -> None:
    tenant, _ = dead_letter_over_plan(platform, tmp_path)
    (letter,) = letters_of(platform, tenant)
    letter_id = str(letter["id"])

    anonymous = browser.new_context()
    try:
        page = anonymous.new_page()
        # Chromium, asked for a credential it does not have, ends the navigation in an
        # error page of its own; the context's request client shows the server's answer.
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(served.url)
        shown = anonymous.request.get(served.url)
        assert shown.status == 401
        assert "quota_exceeded" not in shown.text()
        posted = anonymous.request.post(f"{served.url}/discard", form={"ids": letter_id})
        assert posted.status == 401
    finally:
        anonymous.close()
    wrong = browser.new_context(
        http_credentials={"username": "operator", "password": served.password + "x"}
    )
    try:
        refused = wrong.request.get(served.url)
        assert refused.status == 401
        assert "quota_exceeded" not in refused.text()
    finally:
        wrong.close()

    # The operator's own context: a discard forged without the page's token is refused...
    page = operator.new_page()
    own = page.goto(f"{served.url}/dead-letters/{letter_id}")
    assert own is not None
    assert own.status == 200, "positive control: the operator reads the letter"
    forged = operator.request.post(f"{served.url}/discard", form={"ids": letter_id})
    assert forged.status == 400
    assert "CSRF" in forged.text()
    assert [x["id"] for x in letters_of(platform, tenant)] == [letter_id], "still there"

    # ...and the page's own form, with its token, discards it after the confirmation.
    page.get_by_role("button", name="Discard…").click()
    page.locator("#confirm-discard").click()
    assert page.get_by_role("status").inner_text() == "discarded 1 dead letter(s)"
    assert letters_of(platform, tenant) == []
