# botstream — the two commands: `make run` and `make test`.
# Everything they need is installed here: a virtualenv (pinned by constraints.txt) and the Kafka jars
# (resolved by Maven through deploy/kafka/pom.xml into .cache/, once).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BOTSTREAM := $(VENV)/bin/botstream
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

PROMTOOL ?= promtool
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test unit integration bench faults soak lint jars clean help tools compose compose-check

help:
	@echo "make run    start the local stack (embedded Kafka + pipeline) in the foreground"
	@echo "make test   install what is needed and run the whole test suite"
	@echo "make bench  run the benchmarks (bench/), printing ratios against baselines"
	@echo "make faults fault scenarios on the whole pipeline (kill -9, retry storm, sandbox and broker faults)"
	@echo "make soak   30 minutes at about half capacity: flat latency, memory and lag? (not in CI)"
	@echo "make lint   ruff + mypy"
	@echo "make compose  docker compose up --build -d (checks for Docker Compose v2 first)"

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# promtool (Debian package "prometheus") checks and unit-tests the alert rules in tests/unit/deploy.
tools:
	@command -v $(PROMTOOL) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null && \
	  { $(SUDO) systemctl disable --now prometheus >/dev/null 2>&1 || true; }; }

jars: $(STAMP)
	@$(BOTSTREAM) kafka jars >/dev/null

run: $(STAMP) jars
	$(BOTSTREAM) up

test: $(STAMP) jars tools
	$(PY) -m pytest -m "not faults" $(PYTEST_ARGS)

unit: $(STAMP) tools
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP) jars
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

bench: $(STAMP) jars
	$(PY) -m bench

# 30 minutes of the whole pipeline at about half its capacity: flat latency, memory and lag? (not in CI)
soak: $(STAMP) jars
	$(PY) -m bench.soak $(SOAK_ARGS)

faults: $(STAMP) jars
	$(PY) -m pytest tests/e2e/faults -m faults $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy -p botstream

# docker-compose.yml needs Docker Compose v2 (`docker compose`): Compose v1 (`docker-compose` 1.x)
# rejects its top-level `name:`. DOCKER can point at another client (the check's test does).
DOCKER ?= docker
compose-check:
	@v=$$($(DOCKER) compose version --short 2>/dev/null); \
	case "$$v" in \
	  v2*|2*|v3*|3*|v4*|4*) ;; \
	  *) echo "docker-compose.yml needs Docker Compose v2 ('docker compose ...', found: $${v:-none});" \
	          "Compose v1 ('docker-compose' 1.x) rejects its top-level 'name:'." \
	          "Install the Docker Compose plugin (Debian/Ubuntu: docker-compose-plugin)." >&2; exit 1;; \
	esac

compose: compose-check
	$(DOCKER) compose up --build -d

clean:
	rm -rf .botstream .pytest_cache .mypy_cache .ruff_cache
