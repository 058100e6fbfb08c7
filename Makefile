# The two commands of the README. Each does all set-up on first use (tools/setup_env.sh is idempotent).
.PHONY: setup test demo clean

setup:
	@bash tools/setup_env.sh

test: setup
	@bash tools/run_tests.sh

demo: setup
	@bash tools/with_env.sh pose-perception demo

clean:
	rm -rf .venv build
