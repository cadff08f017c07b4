# The two set-up commands (README): `make run` and `make test`. Both install what is
# missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
# Debug information is line tables only (-g1): backtraces and sanitizer reports keep
# their file:line, and the template-heavy server files compile a quarter to a third
# faster than with full -g (measured on http_session.cc: 64 s instead of 96 at -O2,
# 72 instead of 95 under ASan), which CI's three builds feel.
DEBUG_INFO = -g1
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 $(DEBUG_INFO) -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 $(DEBUG_INFO) -DNDEBUG"
FUZZ_SECONDS ?= 20

.PHONY: run test build package deps npm unit-test asan-test interop-test fuzz fuzz-smoke bench bench-latency bench-scale soak clean

run: build
	./$(BUILD)/groundmist-sync serve

test: build npm
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) asan-test
	$(MAKE) fuzz-smoke

deps:
	@bash scripts/install-deps.sh

npm: deps
	@bash scripts/install-npm.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

# The .deb (CPack; deploy/packaging.cmake, docs/deploy.md): $(BUILD)/groundmist-sync_*.deb.
# Only the program is built for it, not the tests and benchmarks.
package: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS) --target groundmist-sync
	cd $(BUILD) && cpack -G DEB

# Under AddressSanitizer + UndefinedBehaviorSanitizer: the unit tests again, and the
# end-to-end suites of restarts, bad input, stress, faults and limits against the
# sanitized program (label e2e-asan, tests/e2e.cmake). A build-asan configured
# before it built the program is configured again.
asan-test: deps npm
	@grep -qs '^GM_SANITIZER_RUN:BOOL=ON' build-asan/CMakeCache.txt || cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGM_SANITIZE=ON -DGM_SANITIZER_RUN=ON "-DCMAKE_CXX_FLAGS_DEBUG=$(DEBUG_INFO)" "-DCMAKE_C_FLAGS_DEBUG=$(DEBUG_INFO)"
	cmake --build build-asan -j $(JOBS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS) -L '^(unit|e2e-asan)$$'

# libFuzzer targets, clang. `make fuzz` runs each for FUZZ_SECONDS (default 20,
# try FUZZ_SECONDS=600); `fuzz-smoke` is the short run CI does.
build-fuzz/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja $(CMAKE_FLAGS) -DGM_FUZZ=ON

fuzz: deps build-fuzz/build.ninja
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	bash scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10

bench: build npm
	bash scripts/bench.sh $(BUILD)

# Only the edit-latency part of `make bench` (issue 12).
bench-latency: build npm
	bash scripts/bench-latency.sh $(BUILD)

# Scale (issue 13; not part of `make bench`): 10,000 idle sockets, start-up and first
# sync over 1k–100k documents (SCALE_SOCKETS, SCALE_DOCS), against the JS reference.
bench-scale: build npm
	bash scripts/bench-scale.sh $(BUILD)

# Clients connecting, editing and leaving for SOAK_MINUTES (default 30) while the
# server's memory and file descriptors are sampled.
soak: build npm
	bash scripts/soak.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-fuzz
