# Developer shortcuts; the README's commands need no make.
VENV ?= .venv

.PHONY: check lint types test demo up down status bench drill
check: lint types test

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types:
	$(VENV)/bin/mypy

test:
	deploy/local/platform test

demo:
	deploy/local/platform demo

up down status bench drill:
	deploy/local/platform $@
