# graft: the two set-up commands are `make demo` and `make test`.
BUILD   ?= build
PREFIX  ?= /usr/local
JOBS    ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps configure test demo bench evolution install clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/deps.sh build

configure: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) $(if $(CI),-DGRAFT_WERROR=ON)

test: configure
	@scripts/deps.sh test
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure --timeout 300 -j $(JOBS)

demo: all
	@scripts/deps.sh demo
	scripts/demo.sh $(BUILD)

bench: all
	@scripts/deps.sh bench
	bench/run.sh $(BUILD)

evolution: all
	@scripts/deps.sh demo
	scripts/evolution.sh $(BUILD)

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
