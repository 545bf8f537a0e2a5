# The whole set-up on a fresh machine is `make dev` (run the platform) and `make test` (every test).
# Each target installs what it needs: Node.js 24 from the npm registry, npm packages from the lock
# file, and the local servers from Debian packages, Maven Central and the Go module proxy.
SHELL := /bin/bash
.DEFAULT_GOAL := help
RUN := hack/run.sh

# Servers `make dev` starts (`make dev KUBE=1` adds the Kubernetes API server and its etcd);
# `make test` always starts all of them.
DEV_INFRA ?= mariadb redis kafka ferretdb $(if $(KUBE),etcd kube)
TEST_INFRA ?= mariadb redis kafka ferretdb etcd kube

.PHONY: help deps dev test lint format typecheck build web-dev images infra-up infra-test-up infra-down infra-status infra-logs clean bench-stock bench-orders bench-chat bench-operator bench-mypage

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## install Node.js 24 and the npm packages
	@$(RUN) true

dev: deps ## start the local servers, migrate, seed demo data and run every service (Ctrl-C stops)
	@hack/infra.sh up $(DEV_INFRA)
	@$(RUN) node hack/dev.ts

test: deps ## start the local servers, then lint, type-check and run every test suite
	@hack/infra.sh up $(TEST_INFRA)
	@$(RUN) npm run --silent lint
	@$(RUN) npm run --silent typecheck
	@$(RUN) npm test

lint: deps ## lint and check formatting (biome)
	@$(RUN) npm run --silent lint

format: deps ## apply the formatter and safe lint fixes
	@$(RUN) npm run --silent format

typecheck: deps ## type-check every package (tsc -b, project references)
	@$(RUN) npm run --silent typecheck

build: typecheck ## compile every package (declarations and JavaScript under dist/) and the web app into web/dist
	@$(RUN) npm run --silent build -w web

web-dev: deps ## the web app on Vite's dev server (http://127.0.0.1:5173, hot reload), /api and /ws proxied to the gateway (make dev)
	@$(RUN) npm run --silent dev -w web

images: ## build the platform image and the development infrastructure images with podman (archives under ~/.cache/timedeal/images)
	@hack/images/build.sh

infra-up: ## start the local servers (MariaDB, Redis, Kafka, FerretDB)
	@hack/infra.sh up $(DEV_INFRA)

infra-test-up: ## start every server the tests use
	@hack/infra.sh up $(TEST_INFRA)

infra-down: ## stop every server hack/infra.sh started
	@hack/infra.sh down

infra-status: ## what runs where, with versions
	@hack/infra.sh status

infra-logs: ## follow the servers' logs
	@hack/infra.sh logs

bench-stock: deps ## benchmark stock reservations: HTTP vs a bare Hono route, the Lua ceiling, a MySQL row lock, and on a Redis Cluster; profiles (bench-results/; BENCH_QUICK=true: ~2 min)
	@hack/infra.sh up mariadb redis
	@$(RUN) node hack/bench/stock.ts

bench-orders: deps ## benchmark orders: closed-loop to PAID, open-loop at BENCH_OPEN_RATE/s, placement only, with the MySQL and Kafka ceilings; profiles (bench-results/; BENCH_QUICK=true: ~2 min)
	@hack/infra.sh up mariadb redis kafka
	@KAFKA_TOPIC_PREFIX="$${KAFKA_TOPIC_PREFIX:-bench-$$(date +%s).}" $(RUN) node hack/bench/orders.ts

bench-chat: deps ## benchmark chat: deliveries/s and SEND→MESSAGE p99 on 1 and 2 instances vs RabbitMQ Web-STOMP (bench-results/)
	@hack/infra.sh up mariadb redis kafka ferretdb
	@hack/bench/rabbitmq-install.sh
	@KAFKA_TOPIC_PREFIX="$${KAFKA_TOPIC_PREFIX:-bench-$$(date +%s).}" $(RUN) node hack/bench/chat.ts

bench-mypage: deps ## benchmark my page: parallel vs sequential parts with every service delayed, and p99 with one down (bench-results/)
	@KAFKA_TOPIC_PREFIX="$${KAFKA_TOPIC_PREFIX:-bench-$$(date +%s).}" $(RUN) node hack/bench/mypage.ts

bench-operator: deps ## benchmark the operator: 500 KafkaTopics to Ready vs bare kafkajs, 100,000 goods warmed vs a bare pipelined load (bench-results/)
	@hack/infra.sh up mariadb redis kafka etcd kube
	@KAFKA_TOPIC_PREFIX="$${KAFKA_TOPIC_PREFIX:-bench-$$(date +%s).}" $(RUN) node operator/bench/bench-operator.ts

.PHONY: kind-up kind-down kind-load e2e

kind-up: ## a one-node Kubernetes v1.37 cluster on kind (podman), built locally; KUBECONFIG=.state/kind/kubeconfig
	@hack/kind/up.sh

kind-down: ## delete the kind cluster and put the host back as it was (build products stay cached)
	@hack/kind/down.sh

kind-load: ## build the platform and infrastructure images and load them into the kind cluster
	@hack/kind/load-images.sh

e2e: deps ## kind-up, install both charts, smoke-test through the NodePort, uninstall, kind-down
	@hack/kind/e2e.sh

clean: ## remove build output (the state folder and caches stay)
	rm -rf packages/*/dist services/*/dist operator/dist web/dist web/.types node_modules/.cache
