#!/bin/sh
# Starts one KRaft node; formats its storage on the first start. Settings:
#   KAFKA_ADVERTISED_HOST  the name clients reach this broker by (default: the pod's hostname)
#   KAFKA_CLUSTER_ID       the KRaft cluster id used when formatting (default: a fixed dev id)
#   KAFKA_HEAP             the JVM heap (default 512m)
set -eu
data=/var/lib/kafka
host="${KAFKA_ADVERTISED_HOST:-$(hostname -f 2>/dev/null || hostname)}"
props="$data/server.properties"
cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://$host:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/logs
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
java_opts="-Xms${KAFKA_HEAP:-512m} -Xmx${KAFKA_HEAP:-512m} -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j.configuration=file:/opt/kafka/config/log4j.properties"
if [ ! -f "$data/logs/meta.properties" ]; then
  # shellcheck disable=SC2086
  java $java_opts -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format \
    -t "${KAFKA_CLUSTER_ID:-dGltZWRlYWwtZGV2LWthZg}" -c "$props"
fi
# shellcheck disable=SC2086
exec java $java_opts -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
