# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# weft build. Quiet by default (V=1 for the full commands); out-of-tree in build/.
#   make            build/weftd, build/weftctl (BPF embedded as skeletons)
#   make deps       Debian packages for build, test, demo
#   make test       unit tests (plain + ASan/UBSan), fuzz corpora, end-to-end (root)
#   make demo       the guided demo (root)
#   make bench      benchmarks (see docs/benchmarks.md)
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS
#   make install    PREFIX=/usr/local DESTDIR=
#   make format-check  fail, listing the C files that differ from .clang-format
#   make format     reformat them in place (clang-format -i)
.DELETE_ON_ERROR:
.SUFFIXES:
.SECONDARY:

BUILD     ?= build
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
CLANG     ?= clang
BPFTOOL   ?= bpftool
CLANG_FORMAT ?= clang-format
PYTHON    ?= /usr/bin/python3
FUZZ_SECONDS ?= 60
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wformat=2 -Wvla
CFLAGS   ?= -O2 -g
CPPFLAGS := -D_GNU_SOURCE -Iinclude -Iuserspace -I$(BUILD)
BASE_CFLAGS := -std=c11 $(WARN) -fno-strict-aliasing $(CFLAGS)
LIBS     := -lbpf -lelf -lz -lev -lconfig -lwolfssl -ljansson -lnghttp2 -lcares -lm
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

# Userspace modules live in folders by layer (docs/architecture.md).
# weftd links every module; weftctl and the fuzz targets link only the
# closure of what they #include (scripts/modules.sh), so their lists are
# derived from the code, never kept by hand.
ALL_SRCS   := $(shell find userspace -name '*.c' | sort)
MAIN_SRCS  := userspace/agent/weftd.c userspace/cli/weftctl.c
CORE_SRCS  := $(filter-out $(MAIN_SRCS),$(ALL_SRCS))
CORE_OBJS  := $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(CORE_SRCS))
SAN_OBJS   := $(patsubst userspace/%.c,$(BUILD)/san/obj/%.o,$(CORE_SRCS))
HDRS       := $(shell find userspace -name '*.h')
modules_of  = $(shell scripts/modules.sh $(1))
CTL_OBJS   := $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(call modules_of,userspace/cli/weftctl.c))
CTL_SAN_OBJS := $(patsubst userspace/%.c,$(BUILD)/san/obj/%.o,$(call modules_of,userspace/cli/weftctl.c))

# Unit tests: tests/unit/test_X.c links against the core objects.
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
UNIT_SAN_BINS := $(patsubst tests/unit/%.c,$(BUILD)/san/tests/%,$(UNIT_SRCS))

FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

# Every C file we write, found rather than listed so new folders are covered
# (corpora are fuzz inputs, not code).
FMT_SRCS   := $(shell find userspace bpf include tests -name '*.[ch]' -not -path 'tests/fuzz/corpus/*' | sort)

.PHONY: all deps test unit unit-san valgrind e2e e2e-plain fuzz fuzz-regress demo bench install clean san format format-check fmt-tool
all: $(BUILD)/weftd $(BUILD)/weftctl

# --- BPF -------------------------------------------------------------------
# vmlinux.h is generated from the running kernel's BTF (CO-RE relocates it
# for other kernels at load time).
$(BUILD)/vmlinux.h: | $(BUILD)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(wildcard bpf/lib/*.h include/weft/*.h) | $(BUILD)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -Iinclude -Ibpf \
		-Wall -Werror -c $< -o $@
	$(Q)llvm-strip -g $@ 2>/dev/null || true

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name weft_$* > $@.tmp && mv $@.tmp $@

# --- userspace --------------------------------------------------------------
# Only the kernel module includes the BPF skeleton.
$(BUILD)/obj/kernel/kernel.o $(BUILD)/san/obj/kernel/kernel.o: $(BPF_SKELS)

$(BUILD)/obj/%.o: userspace/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(BASE_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/san/obj/%.o: userspace/%.c
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(BASE_CFLAGS) $(SAN_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/weftd: $(BUILD)/obj/agent/weftd.o $(CORE_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(BASE_CFLAGS) $^ -o $@ $(LIBS)

# weftctl links only the libraries its modules use (check: libbpf, libconfig,
# libev, wolfSSL, jansson; the admin commands: none of them).
CTL_LDFLAGS := -Wl,--as-needed
$(BUILD)/weftctl: $(CTL_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(BASE_CFLAGS) $(CTL_LDFLAGS) $^ -o $@ $(LIBS)

san: $(BUILD)/san/weftd $(BUILD)/san/weftctl
$(BUILD)/san/weftd: $(BUILD)/san/obj/agent/weftd.o $(SAN_OBJS)
	$(call msg,LD-SAN,$@)
	$(Q)$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $^ -o $@ $(LIBS)
$(BUILD)/san/weftctl: $(CTL_SAN_OBJS)
	$(call msg,LD-SAN,$@)
	$(Q)$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $(CTL_LDFLAGS) $^ -o $@ $(LIBS)

# --- tests ------------------------------------------------------------------
$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJS) $(wildcard tests/common/*.h) | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(BASE_CFLAGS) -Wno-unused-function $< $(CORE_OBJS) -o $@ $(LIBS) -lcmocka

$(BUILD)/san/tests/%: tests/unit/%.c $(SAN_OBJS) $(wildcard tests/common/*.h) | $(BUILD)/san/tests
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) $(CPPFLAGS) $(BASE_CFLAGS) $(SAN_FLAGS) -Wno-unused-function $< $(SAN_OBJS) -o $@ $(LIBS) -lcmocka

# Fuzz targets link the parser modules built with clang + libFuzzer.
FUZZ_CFLAGS := -std=c11 -g -O1 $(CPPFLAGS) -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer
$(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_SRCS) $(HDRS) $(wildcard tests/common/*.h) | $(BUILD)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(call modules_of,$<) -o $@ $(LIBS)

unit: $(UNIT_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

unit-san: $(UNIT_SAN_BINS)
	$(Q)set -e; for t in $(UNIT_SAN_BINS); do echo "== $$t (asan+ubsan)"; $$t; done

# Unit tests under valgrind (memcheck): no errors, no definite/indirect leaks.
valgrind: $(UNIT_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do echo "== $$t (valgrind)"; \
		valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
		$$t > $$t.valgrind.log 2>&1 || { cat $$t.valgrind.log; exit 1; }; done

# Replays each committed corpus once: crashers that joined the corpus stay fixed.
fuzz-regress: $(FUZZ_BINS)
	$(Q)set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
		echo "== $$n corpus"; $$f -runs=0 tests/fuzz/corpus/$$n >/dev/null 2>$(BUILD)/fuzz/$$n.log || { cat $(BUILD)/fuzz/$$n.log; exit 1; }; done

fuzz: $(FUZZ_BINS)
	$(Q)set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/$$n.new; \
		$$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/$$n.new tests/fuzz/corpus/$$n; done

# End-to-end tests run against the ASan+UBSan weftd (WEFTD= to override).
E2E_WEFTD ?= $(BUILD)/san/weftd
e2e: $(E2E_WEFTD) $(BUILD)/weftd $(BUILD)/weftctl
	$(Q)WEFTD=$(abspath $(E2E_WEFTD)) WEFTD_PLAIN=$(abspath $(BUILD)/weftd) WEFTCTL=$(abspath $(BUILD)/weftctl) \
		$(PYTHON) -m pytest -q -ra tests/e2e $(PYTEST_ARGS)

test: format-check all san unit unit-san valgrind fuzz-regress e2e

deps:
	$(Q)scripts/deps.sh

# --- formatting -------------------------------------------------------------
# .clang-format is written for clang-format 14 (Debian 12); other versions
# format some constructs differently, so we warn when it is another one.
fmt-tool:
	$(Q)command -v $(CLANG_FORMAT) >/dev/null || { echo "$(CLANG_FORMAT): not found; install it with make deps (Debian: clang-format)" >&2; exit 1; }
	$(Q)$(CLANG_FORMAT) --version | grep -q 'version 14\.' || \
		echo "warning: .clang-format is tuned for clang-format 14; this is $$($(CLANG_FORMAT) --version)" >&2

format-check: fmt-tool
	$(call msg,FMTCHECK,$(words $(FMT_SRCS)) files)
	$(Q)bad=; for f in $(FMT_SRCS); do \
		out=$$($(CLANG_FORMAT) --dry-run -Werror "$$f" 2>&1) && continue; \
		case "$$out" in \
		*-Wclang-format-violations*) bad="$$bad $$f" ;; \
		*) echo "$$f: $(CLANG_FORMAT) failed: $$out" >&2; exit 1 ;; \
		esac; \
	done; \
	[ -z "$$bad" ] || { echo "format-check: these files differ from .clang-format" \
		"(see $(CLANG_FORMAT) --dry-run FILE; make format rewrites them):"; printf '  %s\n' $$bad; exit 1; }

format: fmt-tool
	$(call msg,FORMAT,$(words $(FMT_SRCS)) files)
	$(Q)$(CLANG_FORMAT) -i $(FMT_SRCS)

demo:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

bench: all
	$(Q)scripts/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/weft $(DESTDIR)/etc/weft
	install -m 0755 $(BUILD)/weftd $(BUILD)/weftctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 config/weft.conf $(DESTDIR)/etc/weft/weft.conf
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/weft/

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)

$(BUILD) $(BUILD)/bpf $(BUILD)/tests $(BUILD)/san/tests $(BUILD)/fuzz:
	$(Q)mkdir -p $@

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/san/obj/*/*.d)
