# Custos: the two commands of the README, and a few for developers.
#   make run    install what is missing, build, serve on embedded defaults (./var)
#   make test   install what is missing, build, run every test; again under ASan+UBSan
.PHONY: run test build build-asan unit integration clean

JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCUSTOS_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run:
	scripts/deps.sh
	$(MAKE) build
	$(BUILD)/cli/custos serve

test:
	scripts/deps.sh --test
	scripts/test-js-deps.sh
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
