"""What the benchmarks share: the local platform's settings, and their accounts' password."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from workers.settings import Settings

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "Bench-Passw0rd-Value!"  # noqa: S105 - the benchmark's own throwaway accounts


def env_file() -> Path:
    state = Path(os.environ.get("PROVISIONER_STATE_DIR", REPO / ".state" / "local"))
    return state / "provisioner.env"


def platform_env() -> dict[str, str]:
    """The ``export K='V'`` lines of the local platform's env file."""
    env: dict[str, str] = {}
    for line in env_file().read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export":
            key, value = words[1].split("=", 1)
            env[key] = value
    return env


def load_settings() -> Settings:
    return Settings.from_env(platform_env())
