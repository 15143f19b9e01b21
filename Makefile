# daxlab - build and test.
#
#   make          build the guest programs (static scenarios and tools)
#   make test     every test: lint, C unit tests under ASan/UBSan, and the
#                 host-side pytest harness that boots real guests
#   make lint     shellcheck and clang-format checks only
#   make kernels  the guest kernels from linux-source-6.1: slim and debug
#   make mutants  every mutant kernel (guest-kernel/patches/mutants/),
#                 each a rebuild of the touched files in a shared tree
#
# Everything built goes under $(CACHE) (default .cache, ignored by git).

CACHE ?= $(CURDIR)/.cache
BUILD := $(CACHE)/build
CC ?= gcc
CSTD := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE
CFLAGS ?= -O2 -g

GUEST := $(BUILD)/guest
SCENARIO_SRC := $(sort $(wildcard scenarios/[0-9][0-9][0-9]-*.c))
SCENARIO_BIN := $(patsubst scenarios/%.c,$(GUEST)/scenarios/%,$(SCENARIO_SRC))
GUEST_LIB := scenarios/lib/tap.c scenarios/lib/daxenv.c scenarios/lib/race.c
GUEST_HDR := scenarios/lib/tap.h scenarios/lib/daxenv.h scenarios/lib/race.h emulator/daxlab-marker.h
TOOLS_BIN := $(GUEST)/tools/dax-probe $(GUEST)/tools/daxlab-mark

EMU_UNITS := emulator/x86-decode.c emulator/persist.c emulator/line-set.c emulator/perf-model.c \
	emulator/sparse-copy.c
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))

SHELL_SCRIPTS := run.sh .ci/run $(wildcard scripts/*.sh images/*.sh guest-kernel/*.sh emulator/*.sh) \
	$(filter-out %.c,$(wildcard bench/*))
C_SOURCES := $(wildcard scenarios/*.c scenarios/lib/*.[ch] images/*.c tests/unit/*.c emulator/*.[ch] guest-kernel/*/*.c \
	bench/*.c)
PYTEST := /usr/bin/python3 -m pytest

PLUGIN := $(BUILD)/emulator/libdaxlab-pmem.so
CRASH_TOOL := $(BUILD)/emulator/daxlab-crash
TRACE_TOOL := $(BUILD)/emulator/daxlab-trace
LATENCY_TOOL := $(BUILD)/emulator/daxlab-latency
PLUGIN_SRC := emulator/daxlab-pmem.c emulator/persist.c emulator/line-set.c emulator/perf-model.c emulator/x86-decode.c \
	emulator/sparse-copy.c

.PHONY: all guest plugin test test-deps unit lint format pytest clean kernels mutants
all: guest plugin
guest: $(SCENARIO_BIN) $(TOOLS_BIN)
plugin: $(PLUGIN) $(CRASH_TOOL) $(TRACE_TOOL) $(LATENCY_TOOL)

# Host tools are built with the sanitizers on: they run in the tests.
$(CRASH_TOOL): emulator/daxlab-crash.c emulator/sparse-copy.c emulator/persist.h emulator/sparse-copy.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -Iemulator -o $@ $< emulator/sparse-copy.c

$(TRACE_TOOL): emulator/daxlab-trace.c emulator/pmem-trace.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -Iemulator -o $@ $<

$(LATENCY_TOOL): emulator/daxlab-latency.c emulator/perf-model.c emulator/perf-model.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -Iemulator -o $@ emulator/daxlab-latency.c emulator/perf-model.c


# The QEMU plugin, against the plugin header of the installed QEMU (taken
# from Debian's QEMU source tarball into the cache).
$(PLUGIN): $(PLUGIN_SRC) $(wildcard emulator/*.h)
	@mkdir -p $(@D)
	inc=$$(emulator/fetch-qemu-header.sh $(CACHE)) && \
	$(CC) $(CSTD) $(CFLAGS) -shared -fPIC -pthread -I"$$inc" -Iemulator \
		$$(pkg-config --cflags glib-2.0) -o $@ $(PLUGIN_SRC)

# Guest programs are static: the initramfs has no matching libc for them.
$(GUEST)/scenarios/%: scenarios/%.c $(GUEST_LIB) $(GUEST_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(CFLAGS) -Iscenarios -static -pthread -o $@ $< $(GUEST_LIB)
	@# The kernel functions the scenario wants delayed by run.sh --widen
	@# (several "daxlab-widen:" lines add up)
	@sed -n 's/^ \* daxlab-widen: *//p' $< | paste -sd, - >$@.widen; [ -s $@.widen ] || rm -f $@.widen

$(GUEST)/tools/dax-probe: images/dax-probe.c $(GUEST_LIB) $(GUEST_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(CFLAGS) -static -o $@ $< $(GUEST_LIB)

$(GUEST)/tools/daxlab-mark: images/daxlab-mark.c emulator/daxlab-marker.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(CFLAGS) -static -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(GUEST_LIB) $(GUEST_HDR) $(EMU_UNITS) $(wildcard emulator/*.h tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -pthread -Iscenarios -Iemulator -o $@ $< $(GUEST_LIB) $(EMU_UNITS)

# bench/persist-model's program, built here too (sanitized) so that it
# cannot rot: unit runs it once on small NV-DIMMs.
BENCH_PERSIST := $(BUILD)/bench/persist-model
$(BENCH_PERSIST): bench/persist-model.c emulator/persist.c emulator/line-set.c $(wildcard emulator/*.h)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(SAN) -pthread -Iemulator -o $@ $< emulator/persist.c emulator/line-set.c

unit: $(UNIT_BIN) $(BENCH_PERSIST)
	@for t in $(UNIT_BIN); do echo "unit: $$t"; $$t || exit 1; done
	@echo "unit: $(BENCH_PERSIST) (smoke)"; $(BENCH_PERSIST) --sizes 1M,4M --pending 100 --rounds 2 >/dev/null

lint:
	shellcheck -x $(SHELL_SCRIPTS)
	clang-format --dry-run -Werror $(C_SOURCES)

pytest: guest plugin
	$(PYTEST) -v tests

# make test on a new machine: what the tests need is installed first (apt-get).
test-deps:
	scripts/install-deps.sh --tests

test: test-deps lint unit pytest

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
