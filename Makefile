# liveshop: `make run` serves the demo on the embedded default; `make test` runs the
# whole suite against PostgreSQL and Redis; `make lint` is what CI checks besides.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/liveshop_test
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/0

.PHONY: help install install-dev system-deps run test lint format messages vendor-hls bench clean

help:
	@echo "make run    install, migrate, seed the demo and serve on http://$(HOST):$(PORT)/"
	@echo "make test   install and run the whole test suite (PostgreSQL and Redis)"
	@echo "make lint   ruff, ruff format --check, mypy, makemigrations --check"
	@echo "make format apply ruff's fixes and formatting"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# What the suite needs from Debian, installed when missing (CI runs as root on a fresh
# machine): the browser tests (tests/web/) drive Debian's Chromium through Playwright,
# never a browser that Playwright downloads, with the fonts a phone has for Chinese and
# emoji, so screenshots show what viewers see; tests/chaos/test_nginx.py runs
# deploy/nginx.conf in a real nginx; tests/streams/ run deploy/nginx-rtmp.conf (nginx with
# libnginx-mod-rtmp) with ffmpeg publishing to it.
CHROMIUM := /usr/bin/chromium
NGINX    := /usr/sbin/nginx
RTMP_MODULE := /usr/lib/nginx/modules/ngx_rtmp_module.so
FFMPEG   := /usr/bin/ffmpeg
# redis-server and redis-cli: the chaos tests start their own servers and Redis Clusters.
REDIS_CLI := /usr/bin/redis-cli
system-deps:
	@test -x $(CHROMIUM) -a -x $(NGINX) -a -f $(RTMP_MODULE) -a -x $(FFMPEG) -a -x $(REDIS_CLI) || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		chromium fonts-noto-cjk fonts-noto-color-emoji nginx-light libnginx-mod-rtmp ffmpeg redis-server; }

# The demo runs with DEBUG on (settings default to off) unless DEBUG is set already.
run: export DEBUG ?= 1
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

# The suite needs the real PostgreSQL and Redis: DATABASE_URL and REDIS_URL point there
# unless set already. Extra pytest arguments: make test ARGS="-k flash -x".
test: install-dev system-deps
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" \
		$(BIN)/pytest $(ARGS)

# mypy's Django plugin and makemigrations load the settings, which refuse the default
# secret with DEBUG off: give them one that is good for nothing else.
lint: export SECRET_KEY ?= liveshop-lint-only-not-a-secret
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/python manage.py makemigrations --check --dry-run

# After changing the web pages' words: extract them into liveshop/locale/*/django*.po,
# translate there, then compile (the compiled .mo files are committed; needs gettext).
messages: install-dev
	cd liveshop && ../$(BIN)/python ../manage.py makemessages -l zh_Hans --no-obsolete \
		&& ../$(BIN)/python ../manage.py makemessages -d djangojs -l zh_Hans --no-obsolete \
		&& ../$(BIN)/python ../manage.py compilemessages

# The player's hls.js, vendored (no build step): the npm package's ES module build, its
# licence and version. npm checks the tarball against the registry's integrity hash.
HLSJS_VERSION := 1.7.4
HLSJS_DIR     := liveshop/static/liveshop/vendor/hls.js
vendor-hls:
	rm -rf $(VENV)/hlsjs && mkdir -p $(VENV)/hlsjs
	cd $(VENV)/hlsjs && npm pack --silent hls.js@$(HLSJS_VERSION) > /dev/null && tar xzf hls.js-$(HLSJS_VERSION).tgz
	cp $(VENV)/hlsjs/package/dist/hls.light.min.mjs $(VENV)/hlsjs/package/LICENSE $(HLSJS_DIR)/
	echo "hls.js $(HLSJS_VERSION) (npm), dist/hls.light.min.mjs; npm tarball $$(cd $(VENV)/hlsjs && npm view --silent hls.js@$(HLSJS_VERSION) dist.integrity); make vendor-hls refreshes it" > $(HLSJS_DIR)/VERSION

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .ruff_cache .pytest_cache
