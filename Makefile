# Makefile: a thin front for meson + ninja.
#   make            build into ./build
#   make test       unit + end-to-end tests, then the unit tests under ASan+UBSan
#   make demo       install what is missing, build, start avad in ./var, run a training
#   make demo-stop  stop the avad that make demo started
#   make install    PREFIX=/usr/local DESTDIR=
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps test unit e2e asan demo demo-stop install clean format bench

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX)

deps:
	scripts/install-deps --build

test:
	scripts/install-deps --test
	$(MAKE) all
	-meson test -C $(BUILD) --suite unit --suite e2e --print-errorlogs
	$(MAKE) asan
	scripts/test-summary $(BUILD) $(ASAN_BUILD)

unit: all
	meson test -C $(BUILD) --suite unit --print-errorlogs

e2e: all
	meson test -C $(BUILD) --suite e2e --print-errorlogs

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	-ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    meson test -C $(ASAN_BUILD) --suite unit --print-errorlogs

demo:
	scripts/install-deps --demo
	$(MAKE) all
	scripts/demo

demo-stop:
	scripts/demo-stop

install: all
	meson configure $(BUILD) --prefix=$(PREFIX)
	ninja -C $(BUILD)
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

bench: all
	$(BUILD)/bench/lifecycle

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
