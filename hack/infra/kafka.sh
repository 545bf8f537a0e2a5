# Apache Kafka, one KRaft node (broker and controller), from the jars on Maven Central.
kafka_PORT="${TIMEDEAL_KAFKA_PORT:-9092}"
kafka_PORT_SETTING=TIMEDEAL_KAFKA_PORT
KAFKA_CONTROLLER_PORT="${TIMEDEAL_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO_ROOT/hack/kafka/pom.xml")"
KAFKA_LIBS="$TIMEDEAL_CACHE/kafka-$KAFKA_VERSION/libs"

kafka_install() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] && return 0
  command -v mvn >/dev/null || apt_install maven
  log "kafka: resolving broker $KAFKA_VERSION and its dependencies from Maven Central"
  local tmp="$KAFKA_LIBS.partial"
  rm -rf "$tmp"
  mvn -q -B -f "$REPO_ROOT/hack/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 || die "kafka: Maven could not resolve the broker jars"
  rm -rf "$KAFKA_LIBS" && mv "$tmp" "$KAFKA_LIBS"
}

kafka_java() { java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j.configuration="file:$REPO_ROOT/hack/kafka/log4j.properties" -cp "$KAFKA_LIBS/*" "$@"; }

kafka_start() {
  ensure_port_free kafka "$KAFKA_CONTROLLER_PORT" TIMEDEAL_KAFKA_CONTROLLER_PORT
  local data; data="$(data_dir kafka)"
  mkdir -p "$data"
  local props="$data/server.properties"
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$INFRA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$INFRA_HOST:$kafka_PORT,CONTROLLER://$INFRA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$INFRA_HOST:$kafka_PORT
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
# Topics are declared (KafkaTopic resources, the contracts catalog), never created by accident.
auto.create.topics.enable=false
log.retention.hours=168
PROPS
  if [ ! -f "$data/logs/meta.properties" ]; then
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$(log_file kafka)")" || die "kafka: could not create a cluster id"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >>"$(log_file kafka)" 2>&1 ||
      die "kafka: formatting the KRaft storage failed (see $(log_file kafka))"
  fi
  start_daemon kafka java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$REPO_ROOT/hack/kafka/log4j.properties" -cp "$KAFKA_LIBS/*" kafka.Kafka "$props"
}

# The listener opens before the broker has joined the quorum; the log line marks real readiness.
kafka_ready() { port_open "$kafka_PORT" && grep -q 'Kafka Server started' "$(log_file kafka)"; }
kafka_version() { echo "$KAFKA_VERSION"; }
kafka_address() { echo "$INFRA_HOST:$kafka_PORT"; }
kafka_env() { echo "KAFKA_BROKERS=$INFRA_HOST:$kafka_PORT"; }
