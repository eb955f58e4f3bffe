# ebpf-pack — the two commands of the quick start, and the rest.
#   make demo   install what is missing, build + verify the x86_64 bundle, and (as root on a BPF kernel)
#               run its probes for a few seconds on this machine
#   make test   install what is missing, then run every test (unit, snapshot, real builds, real loads,
#               a few seconds of every fuzz target)
#   make fuzz   the long fuzz campaign (FUZZ_SECONDS per target, default 1800)
SHELL := /bin/bash
CARGO ?= cargo
EBPF_PACK := target/release/ebpf-pack
DEMO_TARGET ?= x86_64
DEMO_SECONDS ?= 5

FUZZ_SECONDS ?= 1800
FUZZ_JOBS ?= 2

.PHONY: deps demo test lint bench clean fuzz fuzz-smoke

deps:
	@bash scripts/install-deps.sh

$(EBPF_PACK): deps FORCE
	$(CARGO) build --locked --release -p ebpf-pack

# The bundle is the path `build` prints (`SHA256  PATH`): dist/ may hold others of the same target.
demo: $(EBPF_PACK)
	@bundle=$$($(EBPF_PACK) build --target $(DEMO_TARGET) | awk 'END { print $$2 }') && \
	  $(EBPF_PACK) verify "$$bundle" --target $(DEMO_TARGET) && \
	  bash scripts/demo-run.sh "$$bundle" $(DEMO_SECONDS)

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	bash scripts/lint-yocto.sh

test: lint fuzz-smoke
	$(CARGO) test --locked --workspace --all-targets

# Every fuzz target for a few seconds on its seeds and every input that once crashed it.
fuzz-smoke: deps
	bash scripts/fuzz.sh -j $(FUZZ_JOBS) 5

# The long campaign: FUZZ_SECONDS per target (docs/RELIABILITY.md records the figures).
fuzz: deps
	bash scripts/fuzz.sh -j $(FUZZ_JOBS) $(FUZZ_SECONDS)

bench: $(EBPF_PACK)
	@bash scripts/bench.sh
	@bash scripts/bench-loader.sh
	@bash scripts/bench-run.sh
	@bash scripts/bench-serial.sh
	@bash scripts/bench-toolbox.sh
	@bash scripts/bench-corpus.sh
	@bash scripts/bench-oneliner.sh
	@bash scripts/bench-soak.sh
	$(CARGO) bench --locked -q -p ebpf-pack --bench render

clean:
	rm -rf build dist

FORCE:
