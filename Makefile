# goro: the two commands a newcomer needs are `make demo` and `make test`.
JOBS ?= $(shell nproc)
PROCS ?= 2
CTEST_TIMEOUT ?= 300

.PHONY: all deps build test demo bench test-asan test-tsan test-clang format format-check install clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake --preset default
	cmake --build --preset default -j $(JOBS)

test: build
	ctest --preset default -j $(JOBS) --timeout $(CTEST_TIMEOUT)

demo: build
	bash apps/registrar/demo.sh build/default/apps/registrar/registrar

test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) --timeout $(CTEST_TIMEOUT)

test-tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --preset tsan -j $(JOBS) --timeout $(CTEST_TIMEOUT)

# clang 14 with -Wthread-safety (the lock annotations) on goro's own targets.
test-clang: deps
	cmake --preset clang
	cmake --build --preset clang -j $(JOBS)
	ctest --preset clang -j $(JOBS) --timeout $(CTEST_TIMEOUT)

bench:
	@bash scripts/install-deps.sh bench
	cmake --preset release
	cmake --build --preset release -j $(JOBS)
	bash bench/run.sh build/release/bench/goro_bench $(PROCS)
	bash bench/http.sh build/release/bench/goro_http_server build/release/bench/go_bench $(PROCS)

format:
	git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format --dry-run --Werror

install: build
	cmake --install build/default

clean:
	rm -rf build
