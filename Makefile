# abusedesk: `make demo` and `make test` work on a fresh machine of this kind (Debian, Python 3.11, root).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEB_STAMP := $(VENV)/.debs
# Debian packages the tests drive as real peers: an IMAP server, a NATS server, openssl for S/MIME samples;
# wrk; the telemetry lab's network namespaces, traffic tools, flow exporter and the reference decoder (nfdump);
# Squid as the egress proxy and wget as a crawler (issue 13), GoAccess as the weblog benchmark's peer;
# Chromium for the browser tests (issue 11: Playwright drives /usr/bin/chromium, no downloaded browser)
DEBS := dovecot-imapd openssl nats-server coreutils wrk iproute2 tcpdump softflowd nmap hping3 nfdump squid wget goaccess chromium

.PHONY: crash fuzz demo test test-sqlite test-postgres lint fix typecheck migration services debs bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

debs: $(DEB_STAMP)
$(DEB_STAMP):
	@mkdir -p $(VENV)
	@if ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS)) >/dev/null; \
	fi
	# the packages' own daemons are not wanted: tests start their own on loopback ports
	-@service dovecot stop >/dev/null 2>&1; true
	-@service softflowd stop >/dev/null 2>&1; service nfdump stop >/dev/null 2>&1; true
	-@service squid stop >/dev/null 2>&1; true
	touch $(DEB_STAMP)

# PostgreSQL is started by this machine kind; start it if a fresh machine has it stopped
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	@pg_isready -h 127.0.0.1 -p 5432
	@pgrep -x nats-server >/dev/null || start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

demo: $(STAMP)
	$(BIN)/abusedesk demo --data-dir ./demo-data --fresh

# the whole suite on SQLite, then the whole suite again on PostgreSQL
# (the fuzzing run takes a core for its whole time: alone, so that it slows no timing-sensitive test beside it)
test: $(STAMP) debs services lint
	$(BIN)/pytest -n 2 -q -p no:cacheprovider -m "not fuzzing"
	ABUSEDESK_TEST_DATABASE=postgresql $(BIN)/pytest -n 2 -q -p no:cacheprovider -m "not fuzzing"
	$(BIN)/pytest -q -p no:cacheprovider -m fuzzing

test-sqlite: $(STAMP) debs
	$(BIN)/pytest -n 2 -q

test-postgres: $(STAMP) debs services
	ABUSEDESK_TEST_DATABASE=postgresql $(BIN)/pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

fix: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

migration: $(STAMP)
	$(BIN)/python scripts/regen_migration.py
	$(BIN)/ruff format src/abusedesk/store/migrations
	$(BIN)/ruff check --fix -q src/abusedesk/store/migrations || true

# coverage-guided fuzzing of sniffing, reading and parsing (atheris); the suite runs it for 20 s
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	@mkdir -p .fuzz/work
	$(BIN)/python scripts/fuzz_intake.py .fuzz/work tests/golden $$(find ../shared/corpus/reports -mindepth 2 -maxdepth 2 -type d 2>/dev/null) \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -timeout=10 -artifact_prefix=.fuzz/

# kill -9 at random points, many rounds, on both databases, in process and over NATS (the suite runs a few)
CRASH_ROUNDS ?= 40
crash: $(STAMP) debs services
	ABUSEDESK_CRASH_ROUNDS=$(CRASH_ROUNDS) ABUSEDESK_CRASH_REPORTS=2000 ABUSEDESK_CRASH_NATS_REPORTS=600 \
	  $(BIN)/pytest -q -p no:cacheprovider -n 0 tests/pipeline/test_crash.py
	ABUSEDESK_TEST_DATABASE=postgresql ABUSEDESK_CRASH_ROUNDS=$(CRASH_ROUNDS) ABUSEDESK_CRASH_REPORTS=2000 \
	  ABUSEDESK_CRASH_NATS_REPORTS=600 $(BIN)/pytest -q -p no:cacheprovider -n 0 tests/pipeline/test_crash.py

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache .ruff_cache .fuzz build
