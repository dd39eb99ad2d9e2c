# Herald's two commands for a new user: `make run` and `make test`. Everything else is for developers.
# Each target installs what it needs itself: building needs librabbitmq-dev (the RabbitMQ bridge's
# headers); `make test` also needs python3 (the Python example module), chromium (the dashboard's browser
# test) and rabbitmq-server (the bridge tests start private RabbitMQ nodes of their own).

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FORMAT_PATHS = Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Sources Fuzz/Package.swift Fuzz/Sources

.PHONY: build build-deps run test test-deps lint format bench fuzz crash-test tsan clean

build: build-deps
	$(SWIFT) build

# The RabbitMQ bridge compiles against rabbitmq-c's headers (Debian librabbitmq-dev); the library itself is
# loaded only when [bridge.rabbitmq] is configured (docs/scale-out.md). The herald executable links jemalloc
# (Debian libjemalloc-dev) as its allocator (docs/benchmarks.md, "Allocator").
build-deps:
	@[ -f /usr/include/amqp.h ] && [ -f /usr/include/jemalloc/jemalloc.h ] || { $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y librabbitmq-dev libjemalloc-dev; }

# Starts the broker with its embedded defaults (data in ./herald-data) and the example modules of
# Examples/modules, which it starts and supervises; Ctrl-C stops it cleanly.
run: build
	$(SWIFT) run herald serve --modules-dir Examples/modules

# Every test. Warnings are errors in every Herald target (Package.swift), so this is also the strict build.
test: lint build-deps test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# What the tests run besides Swift, installed with apt when missing (idempotent).
test-deps:
	@command -v python3 >/dev/null || { $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y python3; }
	@command -v chromium >/dev/null || { $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	@[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server; }

lint:
	$(SWIFT) format lint --strict --recursive $(FORMAT_PATHS)

format:
	$(SWIFT) format format --in-place --recursive $(FORMAT_PATHS)

# The in-process benchmark (docs/benchmarks.md), built in release mode in its own package, then the broker
# benchmark (`herald bench pubsub`, Benchmarks/broker.sh) on a release build of herald.
# SwiftPM can keep a stale build plan of the path dependency after source files are added or removed;
# a clean rebuild fixes that.
bench: build-deps test-deps
	cd Benchmarks && ($(SWIFT) build -c release || ($(SWIFT) package clean && $(SWIFT) build -c release))
	Benchmarks/.build/release/InProcessBenchmark
	$(SWIFT) build -c release --product herald
	Benchmarks/broker.sh
	Benchmarks/bridge.sh

# Coverage-guided fuzzing of the envelope parser and payload validator for FUZZ_SECONDS (default 300).
# The leak report at exit concerns one-time global tables and is switched off.
FUZZ_SECONDS ?= 300
fuzz:
	cd Fuzz && $(SWIFT) build -c release
	mkdir -p Fuzz/.build/corpus && cp Fuzz/corpus/* Fuzz/.build/corpus/
	ASAN_OPTIONS=detect_leaks=0 Fuzz/.build/release/FuzzEnvelope Fuzz/.build/corpus -max_total_time=$(FUZZ_SECONDS) -max_len=4096

# The kill -9 crash tests (Tests/HeraldServerTests/CrashTests.swift, and GroupCrashTests.swift with a quarter
# of the rounds) with 200 rounds per fsync policy instead of the 20 of `make test`.
CRASH_ROUNDS ?= 200
crash-test: build-deps
	$(SWIFT) build --build-tests
	HERALD_CRASH_ROUNDS=$(CRASH_ROUNDS) $(SWIFT) test --skip-build --filter CrashTests

# Every test under ThreadSanitizer. HERALD_TSAN makes each StateLock tell TSan about its critical sections,
# which it cannot see inside Linux's futex-based Mutex (Sources/HeraldCore/Concurrency/StateLock.swift).
tsan: build-deps test-deps
	$(SWIFT) test --sanitize=thread -Xswiftc -DHERALD_TSAN --scratch-path .build-tsan

clean:
	rm -rf .build .build-tsan Benchmarks/.build Fuzz/.build
