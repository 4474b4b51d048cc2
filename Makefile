# The two commands of the README:
#   make deploy   deploy on the local inventory, then ask a real question over HTTPS
#   make test     the whole test suite (what .ci/run calls)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTION_LINK := .cache/collections/ansible_collections/llmops/bluegreen
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: deploy test venv collection host lint sanity unit qa-api-test molecule bench-switch status rollback clean

deploy: venv collection
	$(BIN)/ansible-playbook playbooks/deploy.yml
	$(BIN)/python tests/smoke/ask.py

test: venv collection host lint sanity unit qa-api-test molecule
	@echo "make test: all suites passed"

# A virtualenv from the pinned requirements; reinstalled when they change.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# Ansible finds this checkout as the collection llmops.bluegreen through a link.
collection: $(COLLECTION_LINK)
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

# Engine running and images built: what the test suites need on a fresh machine.
host: venv collection
	$(BIN)/ansible-playbook playbooks/host.yml

lint: venv collection
	$(BIN)/ansible-lint --profile production

sanity: venv collection
	scripts/sanity.sh

unit: venv collection
	$(BIN)/pytest -q tests/unit tests/roles

qa-api-test: host
	images/qa-api/run-tests.sh

molecule: venv collection
	cd $(CURDIR) && $(BIN)/molecule test -s default

# Releases and rollbacks back to back under load, against naive updates; prints one JSON object.
bench-switch: venv collection
	$(BIN)/ansible-playbook playbooks/deploy.yml
	$(BIN)/python tests/bench/switch_bench.py

status: venv collection
	$(BIN)/ansible-playbook playbooks/status.yml

rollback: venv collection
	$(BIN)/ansible-playbook playbooks/rollback.yml

clean:
	rm -rf build .cache tests/output
