# odsync — build, test, lint, install. GNU make; dependencies found with pkg-config.
#
#   make              build/odsync and every plugin under build/plugins/
#   make check        all tests (Check, one process per test)
#   make check-asan   the same tests built with AddressSanitizer + UBSan, leak checking on
#   make lint         banned functions and clang-format
#   make demo         the main job on the bundled simulator and fakes
#   make bench        benchmarks (optimised build), build/bench/results.json; bench-smoke: tiny
#   make fuzz         libFuzzer targets (clang), FUZZ_SECONDS each (default 60); fuzz-smoke: 10
#   make soak         kill -9 / fault soak, SOAK_ITERATIONS (default 50)
#   make install      PREFIX=/usr/local DESTDIR=
#   make install-sdk  header, odsync-sdk.pc and plugin.mk for third-party connectors

VERSION     := 0.1.0
PREFIX      ?= /usr/local
DESTDIR     ?=
BUILD       ?= build
SAN         ?= 0
CC          ?= cc
PLUGIN_DIR  ?= $(PREFIX)/lib/odsync/plugins

PKGS := libcurl libcjson sqlite3 check libmicrohttpd libcrypto
NODEPS_GOALS := clean lint help
SHELL := /bin/bash
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) 2>/dev/null && echo y),,$(p))))
ifneq ($(MISSING),)
$(error pkg-config cannot find: $(MISSING). Install the build dependencies with: contrib/install-deps.sh (as root, or it uses sudo))
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CORE_LIBS  := $(shell pkg-config --libs libcurl libcjson sqlite3 libmicrohttpd libcrypto 2>/dev/null) -ldl -lpthread -lm
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
CJSON_LIBS := $(shell pkg-config --libs libcjson 2>/dev/null)

OPT := -O2
ifeq ($(SAN),1)
OPT      := -O1
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
# The fuzz build (make fuzz): everything instrumented for libFuzzer's coverage, plus ASan/UBSan.
ifeq ($(SAN),fuzz)
CC       := clang
OPT      := -O1
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wno-format-nonliteral
CPPFLAGS += -D_XOPEN_SOURCE=700 -D_DEFAULT_SOURCE -Isdk/include -Icore \
            -DODSYNC_VERSION='"$(VERSION)"' -DODSYNC_PLUGIN_DIR='"$(PLUGIN_DIR)"'
CFLAGS   ?= -g $(OPT)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP
PLUGIN_CFLAGS = $(ALL_CFLAGS) -fPIC -fvisibility=hidden
PLUGIN_LDFLAGS = -shared -Wl,-z,defs $(SANFLAGS)
ifeq ($(SAN),fuzz) # clang leaves the sanitizer runtime to the executable: no -z defs here
PLUGIN_LDFLAGS = -shared $(SANFLAGS)
endif

# ---- sources ---------------------------------------------------------------------------
CORE_SRCS    := $(filter-out core/main.c,$(wildcard core/*.c))
CORE_OBJS    := $(CORE_SRCS:%.c=$(BUILD)/obj/%.o)
CORE_LIB     := $(BUILD)/lib/libodsync_core.a
PLUGINS      := $(notdir $(patsubst %/,%,$(dir $(wildcard plugins/*/*.c))))
PLUGIN_SOS   := $(addprefix $(BUILD)/plugins/,$(addsuffix .so,$(sort $(PLUGINS))))
FAKE_SRCS    := $(wildcard contrib/fakes/*.c)
FAKES        := $(FAKE_SRCS:contrib/fakes/%.c=$(BUILD)/contrib/fakes/%)
ODSIM_SRCS   := $(wildcard contrib/odsim/*.c)
ODSIM        := $(if $(ODSIM_SRCS),$(BUILD)/contrib/odsim/odsim)
SUPPORT_SRCS := $(wildcard tests/support/*.c)
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)
SUPPORT_LIB  := $(BUILD)/lib/libtestsupport.a
TEST_SRCS    := $(wildcard tests/unit/test_*.c tests/plugins/test_*.c tests/abi/test_*.c tests/integration/test_*.c)
TESTS        := $(TEST_SRCS:%.c=$(BUILD)/%)
# Fuzz targets: tests/fuzz/fuzz_NAME.c is target NAME; fuzz_plugin.c is one target per plugin
# (plugin_NAME). `make check` runs each as BUILD/tests/fuzz/replay_NAME over its regression
# inputs and seeds; `make fuzz` links the same objects with libFuzzer.
FUZZ_TARGETS := $(filter-out plugin support,$(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))) \
                $(addprefix plugin_,$(sort $(PLUGINS)))
FUZZ_REPLAYS := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/replay_%)
TESTS        += $(FUZZ_REPLAYS)
ABI_FIXTURES := $(patsubst tests/abi/fixtures/%.c,$(BUILD)/tests/abi/%.so,$(wildcard tests/abi/fixtures/*.c))

.PHONY: all check check-asan lint install install-sdk clean demo help bench bench-smoke bench-bins fuzz fuzz-smoke fuzz-run \
        soak
all: $(BUILD)/odsync $(PLUGIN_SOS) $(FAKES) $(ODSIM)

help:
	@sed -n '2,11p' Makefile

$(BUILD)/obj/tests/%.o: CPPFLAGS += -Itests/support

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/pobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PLUGIN_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SUPPORT_LIB): $(SUPPORT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The daemon: deliberately no -rdynamic, so plugins cannot bind to host symbols.
$(BUILD)/odsync: $(BUILD)/obj/core/main.o $(CORE_LIB)
	$(CC) $(SANFLAGS) -o $@ $^ $(CORE_LIBS)

# First-party plugins: every .c in plugins/NAME/ makes build/plugins/NAME.so. A plugin that
# needs more libraries than cJSON names their pkg-config packages in plugins/NAME/plugin.libs.
.SECONDEXPANSION:
$(BUILD)/plugins/%.so: $$(addprefix $(BUILD)/pobj/,$$(addsuffix .o,$$(basename $$(wildcard plugins/$$*/*.c)))) $$(wildcard plugins/$$*/plugin.libs)
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_LDFLAGS) -o $@ $(filter %.o,$^) $(CJSON_LIBS) \
	  $(if $(wildcard plugins/$*/plugin.libs),$(shell pkg-config --libs $(file < plugins/$*/plugin.libs)))

$(BUILD)/tests/abi/%.so: $(BUILD)/pobj/tests/abi/fixtures/%.o
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_LDFLAGS) -o $@ $^

# odsim and the fakes share contrib/serve (listen address, body slot, MHD callbacks).
SERVE_OBJ := $(BUILD)/obj/contrib/serve/serve.o
$(BUILD)/obj/contrib/%.o: CPPFLAGS += -Icontrib/serve

$(BUILD)/contrib/fakes/%: $(BUILD)/obj/contrib/fakes/%.o $(SERVE_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(CORE_LIBS)

# The Open Dental simulator: every contrib/odsim/*.c makes one program.
$(BUILD)/contrib/odsim/odsim: $(ODSIM_SRCS:%.c=$(BUILD)/obj/%.o) $(SERVE_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(CORE_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUPPORT_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(CHECK_LIBS) $(CORE_LIBS)

# ---- fuzz ------------------------------------------------------------------------------
# A target's object: fuzz_NAME.o, or fuzz_plugin.o for plugin_NAME (which also replaces the
# host's HTTP client by the input's responses, at link time).
fuzz_obj = $(BUILD)/obj/tests/fuzz/fuzz_$(if $(filter plugin_%,$(1)),plugin,$(1)).o \
           $(BUILD)/obj/tests/fuzz/fuzz_support.o
FUZZ_WRAP := -Wl,--wrap=http_client_perform -Wl,--wrap=http_response_header \
             -Wl,--wrap=http_response_free
fuzz_ldflags = $(if $(filter plugin_%,$(1)),$(FUZZ_WRAP))

$(FUZZ_REPLAYS): $(BUILD)/tests/fuzz/replay_%: $(BUILD)/obj/tests/fuzz/replay.o \
                 $$(call fuzz_obj,$$*) $(SUPPORT_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(call fuzz_ldflags,$*) -o $@ $^ $(CHECK_LIBS) $(CORE_LIBS)

FUZZERS := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/fuzz_%)
$(FUZZERS): $(BUILD)/tests/fuzz/fuzz_%: $$(call fuzz_obj,$$*) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=fuzzer,address,undefined $(call fuzz_ldflags,$*) -o $@ $^ $(CORE_LIBS)

FUZZ_SECONDS ?= 60
# Each target runs FUZZ_SECONDS over its seeds (tests/fuzz/corpus/NAME, plus the FHIR
# fixtures), its regression inputs and what earlier runs found (BUILD/corpus/NAME). A crash
# stops the run and leaves the input in build/fuzz/crash/NAME/: fix it, then keep the input
# in tests/fuzz/regress/NAME/ so `make check` replays it.
fuzz:
	$(MAKE) SAN=fuzz BUILD=build/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz-run

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10

fuzz-run: $(FUZZERS) $(PLUGIN_SOS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/corpus/$$t $(BUILD)/crash/$$t tests/fuzz/corpus/$$t tests/fuzz/regress/$$t; \
	  extra=""; if [ $$t = fhir ]; then extra=tests/fixtures/fhir; fi; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  env ODSYNC_BUILD=$(abspath $(BUILD)) ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(BUILD)/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 \
	    -max_len=65536 -print_final_stats=1 -artifact_prefix=$(BUILD)/crash/$$t/ \
	    $(BUILD)/corpus/$$t tests/fuzz/corpus/$$t tests/fuzz/regress/$$t $$extra \
	    2>$(BUILD)/crash/$$t/log || { tail -60 $(BUILD)/crash/$$t/log; \
	    echo "fuzz: $$t failed; inputs in $(BUILD)/crash/$$t/"; exit 1; }; \
	  grep -E '^stat::(number_of_executed_units|new_units_added)' $(BUILD)/crash/$$t/log | tr '\n' ' '; echo; \
	done; echo "fuzz: all $(words $(FUZZ_TARGETS)) targets ran $(FUZZ_SECONDS) s without a crash"

# The crash-recovery soak (tests/integration/test_soak.c; `make check` runs it with 3
# iterations). SOAK_SEED replays a run's random kill moments.
SOAK_ITERATIONS ?= 50
soak: all $(BUILD)/tests/integration/test_soak
	env $(TEST_ENV) SOAK_ITERATIONS=$(SOAK_ITERATIONS) CK_DEFAULT_TIMEOUT=7200 \
	  $(BUILD)/tests/integration/test_soak

# ---- tests -----------------------------------------------------------------------------
TEST_ENV = ODSYNC_BUILD=$(abspath $(BUILD)) ODSYNC_SRC=$(CURDIR) CK_DEFAULT_TIMEOUT=120 \
            ODSYNC_PRISM=$(abspath $(PRISM)) \
            NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
            CK_FORK=yes ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# Test-only tools from npm, shared by every build directory.
TOOLS := build/tools
PRISM := $(TOOLS)/node_modules/.bin/prism
PRISM_VERSION := 5.14.2
$(PRISM):
	@command -v npm >/dev/null || { echo "npm is missing: run contrib/install-deps.sh" >&2; exit 1; }
	npm install --no-audit --no-fund --silent --prefix $(TOOLS) @stoplight/prism-cli@$(PRISM_VERSION)
	@touch $@
# playwright-core drives Debian's chromium (no browser download) in tests/ui/.
PLAYWRIGHT := $(TOOLS)/node_modules/playwright-core/package.json
PLAYWRIGHT_VERSION := 1.65.1
$(PLAYWRIGHT): | $(PRISM)
	@command -v npm >/dev/null || { echo "npm is missing: run contrib/install-deps.sh" >&2; exit 1; }
	npm install --no-audit --no-fund --silent --prefix $(TOOLS) playwright-core@$(PLAYWRIGHT_VERSION)
	@touch $@

check: all $(TESTS) $(ABI_FIXTURES) $(PRISM) $(PLAYWRIGHT)
	@log=$$(mktemp); pass=0; fail=0; failed=""; \
	for t in $(TESTS); do \
	  echo "== $$t"; \
	  if env $(TEST_ENV) $$t 2>&1 | tee -a $$log; test $${PIPESTATUS[0]} -eq 0; then :; \
	  else failed="$$failed $$t"; fi; \
	done; \
	checks=$$(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' $$log | \
	  awk '{c+=$$1; f+=$$2+$$3} END {printf "%d %d", c-f, f}'); \
	leaked=$$(grep -c -F -f tests/secrets.list $$log || true); rm -f $$log; \
	set -- $$checks; echo "checks: $$1 passed, $$2 failed"; \
	if [ "$$leaked" != 0 ]; then echo "FAILED: $$leaked output lines hold a configured secret (tests/secrets.list)"; exit 1; fi; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

check-asan:
	$(MAKE) SAN=1 BUILD=build/asan check

# ---- lint ------------------------------------------------------------------------------
LINT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find core plugins sdk tests contrib -name '*.[ch]')
lint:
	@echo "lint: banned functions"; \
	if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol)[[:space:]]*\(' $(LINT_SRCS); then \
	  echo "lint: banned function used (see above)"; exit 1; fi
	@echo "lint: clang-format"; clang-format --dry-run --Werror $(LINT_SRCS)
	@echo "lint: ok"

# ---- install ---------------------------------------------------------------------------
# The layout: binary, plugin directory (0755, not writable by others: the loader checks),
# example configs with the full reference, the man page and the systemd unit.
install: all
	install -d -m 0755 $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PLUGIN_DIR) \
	  $(DESTDIR)$(PREFIX)/share/odsync/examples $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 $(BUILD)/odsync $(DESTDIR)$(PREFIX)/bin/odsync
	install -m 0755 $(PLUGIN_SOS) $(DESTDIR)$(PLUGIN_DIR)/
	install -m 0644 contrib/examples/*.json contrib/examples/README.md \
	  $(DESTDIR)$(PREFIX)/share/odsync/examples/
	install -m 0644 contrib/man/odsync.1 $(DESTDIR)$(PREFIX)/share/man/man1/odsync.1
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' contrib/systemd/odsync.service \
	  > $(DESTDIR)$(PREFIX)/lib/systemd/system/odsync.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/odsync.service

install-sdk:
	install -d $(DESTDIR)$(PREFIX)/include/odsync $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/share/odsync
	install -m 0644 sdk/include/odsync/sink.h $(DESTDIR)$(PREFIX)/include/odsync/sink.h
	install -m 0644 sdk/plugin.mk $(DESTDIR)$(PREFIX)/share/odsync/plugin.mk
	install -m 0644 sdk/README.md $(DESTDIR)$(PREFIX)/share/odsync/README.md
	install -m 0644 sdk/ABI.md $(DESTDIR)$(PREFIX)/share/odsync/ABI.md
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@PLUGIN_DIR@|$(PLUGIN_DIR)|g' \
	  sdk/odsync-sdk.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/odsync-sdk.pc

demo: all
	@contrib/demo/run.sh $(abspath $(BUILD))

# Benchmarks print figures; they assert nothing about time (targets are PASS/MISS lines).
# They run an optimised build of their own (BENCH_BUILD: -O2, NDEBUG, no sanitizers) and write
# build/bench/results.json. BENCH_PATIENTS, BENCH_OFFICES, ... scale them (tests/bench/run.sh).
BENCH_BUILD  := build/bench-opt
BENCH_CFLAGS := -g -O2 -DNDEBUG
BENCH_BINS    = all $(BUILD)/bench/bench_events $(BUILD)/bench/bench_steady $(BUILD)/bench/naive_sync

bench-bins: $(BENCH_BINS)

bench:
	@$(MAKE) --no-print-directory BUILD=$(BENCH_BUILD) SAN=0 CFLAGS="$(BENCH_CFLAGS)" bench-bins
	@BENCH_OUT=$(abspath build/bench) tests/bench/run.sh $(abspath $(BENCH_BUILD))

# The same at tiny sizes, to prove in CI that it runs (about a minute).
bench-smoke:
	@$(MAKE) --no-print-directory BUILD=$(BENCH_BUILD) SAN=0 CFLAGS="$(BENCH_CFLAGS)" bench-bins
	@BENCH_OUT=$(abspath build/bench-smoke) BENCH_PATIENTS=500 BENCH_THROTTLE_PATIENTS=300 \
	  BENCH_STEADY_S=5 BENCH_BATCHES=5 BENCH_OFFICES=4 BENCH_OFFICE_PATIENTS=200 \
	  tests/bench/run.sh $(abspath $(BENCH_BUILD))

# naive_sync is the hand-written-script reference: libcurl and cJSON only, none of odsync.
$(BUILD)/bench/naive_sync: $(BUILD)/obj/tests/bench/naive_sync.o
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(shell pkg-config --libs libcurl libcjson)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(CORE_LIBS)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
