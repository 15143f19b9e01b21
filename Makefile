# daxlab - build and test.
#
#   make          build the guest programs (static scenarios and tools), the
#                 host tools and the QEMU plugin
#   make test     every test: lint, C unit tests under ASan/UBSan, the
#                 parsers fuzzed, and the host-side pytest harness that
#                 boots real guests
#   make lint     shellcheck and clang-format checks only
#   make kernels  the guest kernels from linux-source-6.1: slim and debug
#   make mutants  every mutant kernel (guest-kernel/patches/mutants/),
#                 each a rebuild of the touched files in a shared tree
#
# Everything built goes under $(CACHE) (default .cache, ignored by git).

CACHE ?= $(CURDIR)/.cache
BUILD := $(CACHE)/build
CC ?= gcc
CSTD := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iprotocol
CFLAGS ?= -O2 -g

GUEST := $(BUILD)/guest
SCENARIO_SRC := $(sort $(wildcard scenarios/[0-9][0-9][0-9]-*.c))
SCENARIO_BIN := $(patsubst scenarios/%.c,$(GUEST)/scenarios/%,$(SCENARIO_SRC))
GUEST_LIB := scenarios/lib/tap.c scenarios/lib/daxenv.c scenarios/lib/race.c scenarios/lib/versions.c
PROTO_HDR := protocol/daxlab-protocol.h protocol/daxlab-marker.h
PROTO_SRC := protocol/daxlab-line.c
GUEST_HDR := scenarios/lib/tap.h scenarios/lib/daxenv.h scenarios/lib/race.h scenarios/lib/versions.h $(PROTO_HDR)
# PMDK scenarios (group pmdk) link Debian's libpmemobj dynamically: its
# static archives need libndctl and libdaxctl, which have none; the
# initramfs carries the shared libraries of every dynamic scenario.
PMDK_SRC := $(shell grep -l '^ \* daxlab-groups:.* pmdk' $(SCENARIO_SRC))
PMDK_BIN := $(patsubst scenarios/%.c,$(GUEST)/scenarios/%,$(PMDK_SRC))
PMDK_LIB := scenarios/lib/pmemobj-record.c
GUEST_LINK := -static
TOOLS_BIN := $(GUEST)/tools/dax-probe $(GUEST)/tools/daxlab-mark $(GUEST)/tools/daxlab-emit
# The zero-page window's stand-alone reproducer (docs/), built so it cannot rot.
REPRO_BIN := $(BUILD)/docs/zero-page-repro

# The host's reader and judge of what guests send, and the report.
HOST_UNITS := host/text.c host/plan.c host/run-dir.c host/tap-stream.c host/files-channel.c \
	host/judge.c host/timeline.c emulator/pmem-trace-read.c emulator/crash-plan.c $(PROTO_SRC)
HOST_HDR := host/collect.h host/judge.h host/timeline.h emulator/pmem-trace.h emulator/crash-plan.h \
	emulator/crash-states.h $(PROTO_HDR)
COLLECT := $(BUILD)/host/daxlab-collect
REPORT := $(BUILD)/host/daxlab-report
JSON_LIBS := -ljansson -lm

EMU_UNITS := emulator/x86-decode.c emulator/persist.c emulator/line-set.c emulator/perf-model.c \
	emulator/sparse-copy.c emulator/persist-log.c emulator/crash-states.c
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))

# host/*.sh are sourced by run.sh: shellcheck -x follows them from there.
SHELL_SCRIPTS := run.sh .ci/run scenarios/index.sh \
	$(wildcard scripts/*.sh images/*.sh guest-kernel/*.sh emulator/*.sh) \
	$(filter-out %.c,$(wildcard bench/*))
C_SOURCES := $(wildcard scenarios/*.c scenarios/lib/*.[ch] images/*.c tests/unit/*.c emulator/*.[ch] guest-kernel/*/*.c \
	bench/*.c host/*.[ch] protocol/*.[ch] tests/fuzz/*.c docs/*/*.c)
PYTEST := /usr/bin/python3 -m pytest

PLUGIN := $(BUILD)/emulator/libdaxlab-pmem.so
CRASH_TOOL := $(BUILD)/emulator/daxlab-crash
TRACE_TOOL := $(BUILD)/emulator/daxlab-trace
LATENCY_TOOL := $(BUILD)/emulator/daxlab-latency
PLUGIN_SRC := emulator/daxlab-pmem.c emulator/persist.c emulator/line-set.c emulator/perf-model.c emulator/x86-decode.c \
	emulator/sparse-copy.c

.PHONY: all guest host plugin test test-deps unit fuzz lint format pytest clean kernels mutants
all: guest host plugin
guest: $(SCENARIO_BIN) $(TOOLS_BIN) $(REPRO_BIN)
host: $(COLLECT) $(REPORT)
plugin: $(PLUGIN) $(CRASH_TOOL) $(TRACE_TOOL) $(LATENCY_TOOL)

# Host tools are built with the sanitizers on: they run in the tests.
CRASH_UNITS := emulator/sparse-copy.c emulator/persist-log.c emulator/crash-states.c emulator/crash-plan.c
$(CRASH_TOOL): emulator/daxlab-crash.c $(CRASH_UNITS) emulator/persist.h emulator/sparse-copy.h \
		emulator/persist-log.h emulator/crash-states.h emulator/crash-plan.h protocol/daxlab-marker.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -Iemulator -o $@ $< $(CRASH_UNITS) $(JSON_LIBS)

$(COLLECT): host/daxlab-collect.c $(HOST_UNITS) $(HOST_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -Ihost -Iemulator -o $@ $< $(HOST_UNITS) $(JSON_LIBS)

$(REPORT): host/daxlab-report.c host/text.c $(PROTO_SRC) $(HOST_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -Ihost -o $@ $< host/text.c $(PROTO_SRC) $(JSON_LIBS)

$(TRACE_TOOL): emulator/daxlab-trace.c emulator/pmem-trace-read.c emulator/pmem-trace.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -Iemulator -o $@ $< emulator/pmem-trace-read.c

$(LATENCY_TOOL): emulator/daxlab-latency.c emulator/perf-model.c emulator/perf-model.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -Iemulator -o $@ emulator/daxlab-latency.c emulator/perf-model.c $(JSON_LIBS)


# The QEMU plugin, against the plugin header of the installed QEMU (taken
# from Debian's QEMU source tarball into the cache).
$(PLUGIN): $(PLUGIN_SRC) $(wildcard emulator/*.h) $(PROTO_HDR)
	@mkdir -p $(@D)
	inc=$$(emulator/fetch-qemu-header.sh $(CACHE)) && \
	$(CC) $(CSTD) $(CFLAGS) -shared -fPIC -pthread -I"$$inc" -Iemulator \
		$$(pkg-config --cflags glib-2.0) -o $@ $(PLUGIN_SRC) $(JSON_LIBS)

# Guest programs are static (the initramfs has no libc but what its
# copied programs bring), but for the PMDK scenarios.
$(PMDK_BIN): GUEST_LINK :=
$(PMDK_BIN): GUEST_EXTRA := $(PMDK_LIB) -lpmemobj -lpmem
$(PMDK_BIN): $(PMDK_LIB) $(PMDK_LIB:.c=.h)
$(GUEST)/scenarios/%: scenarios/%.c $(GUEST_LIB) $(GUEST_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(CFLAGS) -Iscenarios $(GUEST_LINK) -pthread -o $@ $< $(GUEST_LIB) $(GUEST_EXTRA)
	@# The kernel functions the scenario wants delayed by run.sh --widen
	@# (several "daxlab-widen:" lines add up)
	@sed -n 's/^ \* daxlab-widen: *//p' $< | paste -sd, - >$@.widen; [ -s $@.widen ] || rm -f $@.widen

$(GUEST)/tools/dax-probe: images/dax-probe.c $(GUEST_LIB) $(GUEST_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(CFLAGS) -static -o $@ $< $(GUEST_LIB)

$(GUEST)/tools/daxlab-mark: images/daxlab-mark.c $(PROTO_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(CFLAGS) -static -o $@ $<

$(REPRO_BIN): docs/zero-page-vs-pwrite/repro.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O2 -pthread -static -o $@ $<

$(GUEST)/tools/daxlab-emit: images/daxlab-emit.c $(PROTO_SRC) $(PROTO_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(CFLAGS) -static -o $@ $< $(PROTO_SRC)

$(BUILD)/unit/%: tests/unit/%.c $(GUEST_LIB) $(GUEST_HDR) $(EMU_UNITS) $(HOST_UNITS) $(HOST_HDR) \
		$(wildcard emulator/*.h tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -pthread -Iscenarios -Iemulator -Ihost -o $@ $< $(GUEST_LIB) \
		$(EMU_UNITS) $(HOST_UNITS) $(JSON_LIBS)

# bench/persist-model's program, built here too (sanitized) so that it
# cannot rot: unit runs it once on small NV-DIMMs.
BENCH_PERSIST := $(BUILD)/bench/persist-model
$(BENCH_PERSIST): bench/persist-model.c emulator/persist.c emulator/line-set.c $(wildcard emulator/*.h)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -pthread -Iemulator -o $@ $< emulator/persist.c emulator/line-set.c $(JSON_LIBS)

unit: $(UNIT_BIN) $(BENCH_PERSIST)
	@for t in $(UNIT_BIN); do echo "unit: $$t"; $$t || exit 1; done
	@echo "unit: $(BENCH_PERSIST) (smoke)"; $(BENCH_PERSIST) --sizes 1M,4M --pending 100 --rounds 2 >/dev/null 2>&1

lint:
	shellcheck -x $(SHELL_SCRIPTS)
	clang-format --dry-run -Werror $(C_SOURCES)

pytest: guest host plugin
	$(PYTEST) -v --durations=25 tests

# The parsers of what guests and logs say, fuzzed (libFuzzer, clang) for
# FUZZ_SECONDS each from the checked-in seeds (tests/fuzz/corpus/NAME);
# new inputs go to the cache, a crash fails make test and is kept there.
FUZZ_TARGETS := tap files line crash-log
FUZZ_SECONDS ?= 20
FUZZ := $(BUILD)/fuzz
FUZZ_BIN := $(patsubst %,$(FUZZ)/fuzz-%,$(FUZZ_TARGETS))
$(FUZZ)/fuzz-%: tests/fuzz/fuzz-%.c $(HOST_UNITS) $(HOST_HDR) emulator/persist-log.c emulator/persist-log.h
	@mkdir -p $(@D)
	clang $(CSTD) -O1 -g -fsanitize=fuzzer,address,undefined -Ihost -Iemulator -o $@ $< \
		$(HOST_UNITS) emulator/persist-log.c $(JSON_LIBS)

fuzz: $(FUZZ_BIN)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ)/corpus-$$t $(FUZZ)/crashes; \
		if ! $(FUZZ)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ)/crashes/$$t- $(FUZZ)/corpus-$$t tests/fuzz/corpus/$$t \
			>$(FUZZ)/$$t.log 2>&1; then \
			tail -n 40 $(FUZZ)/$$t.log; echo "fuzz: $$t found a crash (in $(FUZZ)/crashes)"; exit 1; \
		fi; \
		echo "fuzz: $$t: $$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ)/$$t.log) executions in $(FUZZ_SECONDS) s, no crash"; \
	done

# make test on a new machine: what the tests need is installed first (apt-get).
test-deps:
	scripts/install-deps.sh --tests

test: test-deps lint unit fuzz pytest

MUTANTS := $(sort $(basename $(notdir $(wildcard guest-kernel/patches/mutants/m*.patch))))
kernels:
	@for v in slim debug; do guest-kernel/build.sh --cache $(CACHE) --variant $$v >/dev/null || exit 1; done

mutants: kernels
	@for v in $(MUTANTS); do guest-kernel/build.sh --cache $(CACHE) --variant $$v >/dev/null || exit 1; done
	@guest-kernel/build.sh --list

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $(C_SOURCES)
