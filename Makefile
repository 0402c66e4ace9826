# The README's test command is `make test`. It needs Go and Python 3 (pip
# installs moto_server where it is missing); everything else is fetched
# through the Go module proxy at pinned versions.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOFILES      = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')

.PHONY: test fmt-check vet staticcheck generate-check unit bench chaos fuzz-short

test: fmt-check vet staticcheck generate-check fuzz-short
	@start=$$(date +%s); \
	bash .ci/with-moto.sh $(GO) test -race -count=1 ./... ; rc=$$?; \
	echo "make test: go test finished in $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc

# unit runs the tests without moto (wire tests skip).
unit:
	$(GO) test -race ./...

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi
	@echo "gofmt: clean"

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

# generate-check fails when `go generate ./...` changes any file.
generate-check:
	@sum() { { git diff; git ls-files --others --exclude-standard | sort | xargs -r sha256sum; } | sha256sum; }; \
	before=$$(sum); $(GO) generate ./... || exit 1; after=$$(sum); \
	if [ "$$before" != "$$after" ]; then echo "go generate changed files:"; git status --short; exit 1; fi; \
	echo "go generate: no changes"

# bench runs the fleet-scale scenarios S1-S6 of internal/bench in simulated
# time, prints one BENCH line per scenario and rewrites BENCHMARKS.md.
bench:
	@out=$$($(GO) test -count=1 -run '^TestBench$$' -v ./internal/bench -args -bench-out=$(CURDIR)/BENCHMARKS.md 2>&1); rc=$$?; \
	echo "$$out" | grep '^BENCH '; \
	if [ $$rc -ne 0 ]; then echo "$$out" | grep -v '^BENCH ' | tail -40; fi; exit $$rc

# chaos runs the reliability suite of internal/chaos with 200 seeds per long
# operation (`go test` runs it with 20) and prints the CHAOS summary:
# runs, faults injected by kind, invariant violations (must be 0).
chaos:
	@out=$$($(GO) test -count=1 -run '^TestChaos$$' -v ./internal/chaos -args -chaos.long 2>&1); rc=$$?; \
	echo "$$out" | grep '^CHAOS '; \
	if [ $$rc -ne 0 ]; then echo "$$out" | grep -v '^CHAOS \|^=== RUN\|--- PASS' | tail -40; fi; exit $$rc

# fuzz-short fuzzes every parser and validator of user input for FUZZTIME
# each (go test -fuzz takes one target per run) and prints the executions.
FUZZTIME    ?= 2s
FUZZTARGETS  = internal/quantity:FuzzParse ami:FuzzExpandName ami:FuzzBalancerInput \
               ami:FuzzParsePackerManifest ami:FuzzRetentionPolicy lifecycle:FuzzSelectorAndBudgets \
               patching:FuzzWaves patching:FuzzCommandParameters opsworks:FuzzImport
fuzz-short:
	@for t in $(FUZZTARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	out=$$($(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg 2>&1); rc=$$?; \
	execs=$$(echo "$$out" | grep -o 'execs: [0-9]*' | tail -1 | grep -o '[0-9]*'); \
	echo "FUZZ $$pkg $$fn execs=$${execs:-0} exit=$$rc"; \
	if [ $$rc -ne 0 ]; then echo "$$out" | tail -30; exit $$rc; fi; done
