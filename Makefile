# One entry point for humans and CI. `make test` is the README's test command; `.ci/run` runs `make ci`.
CARGO ?= cargo

.PHONY: run test fmt lint loadtest-lint unit bench smoke loadtest infra infra-moto ci release fuzz deny soak observability browser

run:            ## the proxy on the shipped default config (builtin demo models)
	$(CARGO) run --release -- serve --config config/splitgate.toml

test: fmt lint loadtest-lint unit  ## every check a change must pass

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --all-targets --locked -- -D warnings

loadtest-lint:  ## syntax of loadtest/'s programs: py_compile, node --check (if node), bash -n, shellcheck (if installed)
	loadtest/lint.sh

MOTO := .venv-test/bin/moto_server

$(MOTO):        ## the AWS emulator the AWS tests talk to (real SDK, real wire); PyYAML for the workflow test
	python3 -m venv .venv-test
	.venv-test/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5' 'pyyaml>=6,<7'

unit: $(MOTO)   ## unit, property and end-to-end tests (spawn the binary on 127.0.0.1:0)
	$(CARGO) test --locked

release:
	$(CARGO) build --release --locked

bench:          ## criterion benches of the hot path (numbers in target/criterion)
	$(CARGO) bench --locked

smoke:          ## ≤ 20 s Locust run against the binary; fails on any failed request
	# The binary `cargo test` builds (same features as the test build, tokio's test-util
	# included), so CI does not compile the dependency tree a second time for `cargo build`.
	$(CARGO) test --locked --no-run
	loadtest/smoke.sh target/debug/splitgate

observability:  ## promtool check + unit tests of config/prometheus/alerts.yml (Debian package prometheus)
	promtool check rules config/prometheus/alerts.yml
	promtool test rules config/prometheus/alerts_test.yml

PLAYWRIGHT := tests/browser/node_modules/playwright-core/package.json

$(PLAYWRIGHT): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser: $(PLAYWRIGHT)  ## the admin dashboard in Debian's chromium via playwright-core; screenshots in target/browser/
	# The binary `cargo test` builds, as for `smoke`: no second compile of the tree.
	$(CARGO) test --locked --no-run
	SPLITGATE_BIN=target/debug/splitgate node --test tests/browser/dashboard.test.mjs

loadtest: release
	loadtest/run.sh

FUZZ_SECONDS ?= 60
fuzz:           ## cargo-fuzz, FUZZ_SECONDS per target (stable + RUSTC_BOOTSTRAP); crashes -> fuzz/artifacts/
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in config user_id request_head compare; do mkdir -p corpus/$$t && \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t corpus/$$t regressions/$$t -- \
	  -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 || exit 1; done

deny:           ## licenses, bans, sources (advisories need GitHub, unreachable here; see deny.toml)
	command -v cargo-deny >/dev/null || $(CARGO) install cargo-deny --locked
	$(CARGO) deny --locked check licenses bans sources

soak: release   ## bounded soak, SOAK_SECONDS (default 600, max 900)
	loadtest/soak.sh target/release/splitgate

infra:          ## Dockerfile and Terraform checks (hadolint, terraform fmt, python-hcl2, validate via a provider mirror, checkov, deployment contract tests)
	.ci/infra-check.sh

infra-moto:     ## optional, ~90 s: terraform plan + partial apply of the prod shape against moto on 127.0.0.1, rendered values read back
	.ci/tf-moto-check.sh

ci: test observability browser smoke infra deny
