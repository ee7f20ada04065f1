#!/usr/bin/env bash
# The offline fallback for the two pinned base images: `python:3.11-slim` (the worker image's
# FROM) and `apache/kafka:<kafka.version of kafka/pom.xml>` (docker-compose.yml's kafka service).
#
# For each image the real one is always tried first (`docker pull`). Only when the pull fails (no
# image registry reachable) is a local equivalent built under the SAME tag, so the Dockerfile and
# docker-compose.yml stay unchanged:
#   python:3.11-slim   Debian bookworm (`debootstrap --variant=minbase`, Python 3.11 from Debian)
#                      with pip, venv, passwd (useradd) and the host's CA bundle (package downloads
#                      during `docker build` go through the same TLS-inspecting egress as the host's).
#   apache/kafka:V     that base + Debian's OpenJDK 17 + the jars kafka/pom.xml resolves (the same
#                      ones the local broker runs), configured like the official image: every
#                      KAFKA_FOO_BAR=v becomes foo.bar=v (`___` → `-`, `__` → `_`), CLUSTER_ID,
#                      /opt/kafka/bin scripts for the healthcheck, runs as a non-root user.
# A tag that cannot be pulled but is already present (e.g. built by an earlier run) is kept,
# unless it is a Kafka stand-in of an older recipe (label news-ingest.offline-recipe) or
# `--rebuild` (both) / `--rebuild python|kafka` asks for it to be built again.
#
# Needs: a running Docker engine; debootstrap (Debian: `apt-get install debootstrap`), root for it;
# Maven (or an existing .cache/kafka/V/libs) for the Kafka jars.
# Usage: scripts/offline-images.sh [--rebuild [python|kafka]]
set -euo pipefail
cd "$(dirname "$0")/.."

REBUILD=""
if [[ "${1:-}" == "--rebuild" ]]; then
  REBUILD=${2:-python kafka}
  [[ " python kafka " == *" $REBUILD "* || $REBUILD == "python kafka" ]] || { echo "usage: $0 [--rebuild [python|kafka]]" >&2; exit 2; }
fi
# The Kafka stand-in's recipe: a stand-in with another number is built again (2: the real image's
# VOLUMEs, so `down -v` and anonymous volumes behave the same).
KAFKA_RECIPE=2

KAFKA_VERSION=$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' kafka/pom.xml | head -1)
[[ -n "$KAFKA_VERSION" ]] || { echo "offline-images: no <kafka.version> in kafka/pom.xml" >&2; exit 1; }
PY_IMAGE=python:3.11-slim
KAFKA_IMAGE=apache/kafka:$KAFKA_VERSION
SUITE=bookworm   # Debian 12 ships Python 3.11, as python:3.11-slim is
WORK=$PWD/.cache/offline-images
LIBS=$PWD/.cache/kafka/$KAFKA_VERSION/libs

die() { echo "offline-images: $*" >&2; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
seconds() { echo $(( $(date +%s) - $1 )); }
size_of() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1e6}'; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"

# The Debian mirror apt on this host already uses (deb822 or one-line sources), else Debian's own.
debian_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}' | grep -v security | head -1 || true)
  [[ -n "$uri" ]] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1 || true)
  echo "${DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

# outdated <image> <recipe>: a Kafka stand-in of ours (CMD /opt/kafka/bin/run; the real image runs
# /etc/kafka/docker/run) built by another recipe than this script's.
outdated() {
  local cmd recipe
  cmd=$(docker image inspect -f '{{json .Config.Cmd}}' "$1" 2>/dev/null || true)
  [[ $cmd == '["/opt/kafka/bin/run"]' ]] || return 1
  recipe=$(docker image inspect -f '{{index .Config.Labels "news-ingest.offline-recipe"}}' "$1" 2>/dev/null || true)
  [[ "$recipe" != "$2" ]]
}

# pull_or <image> <name> <builder> [recipe]: the real image if it can be pulled, else what is
# there (unless outdated or --rebuild), else build the stand-in.
pull_or() {
  local image=$1 name=$2 builder=$3 recipe=${4:-} t0
  echo "== $image"
  if docker pull -q "$image" >/dev/null 2>"$WORK/pull.err"; then
    echo "   pulled the real image ($(size_of "$image"))"
    return
  fi
  echo "   cannot pull ($(tail -1 "$WORK/pull.err" | cut -c1-160))"
  if have_image "$image" && [[ -n $recipe ]] && outdated "$image" "$recipe"; then
    echo "   the local $image is a stand-in of an older recipe: building it again"
  elif have_image "$image" && [[ " $REBUILD " != *" $name "* ]]; then
    echo "   keeping the local $image ($(size_of "$image")); --rebuild $name to build it again"
    return
  fi
  echo "   building the local stand-in (the offline fallback)"
  t0=$(date +%s)
  "$builder"
  echo "   built $image in $(seconds "$t0") s ($(size_of "$image"))"
}

build_python() {
  command -v debootstrap >/dev/null || die "debootstrap is needed (apt-get install debootstrap)"
  [[ $EUID == 0 ]] || die "debootstrap and chroot need root"
  local root=$WORK/python-rootfs mirror
  mirror=$(debian_mirror)
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$root"; mkdir -p "$root"
  echo "   debootstrap $SUITE from $mirror"
  debootstrap --variant=minbase "$SUITE" "$root" "$mirror" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  trap 'umount "'"$root"'/proc" 2>/dev/null || true' EXIT
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-pip python3-venv ca-certificates passwd && apt-get clean && rm -rf /var/lib/apt/lists/*' \
    > "$WORK/chroot-apt.log" 2>&1 || { tail -20 "$WORK/chroot-apt.log"; die "installing Python in the chroot failed"; }
  umount "$root/proc"; trap - EXIT
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  : > "$root/etc/resolv.conf"   # docker provides its own
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' \
    -m "offline stand-in for $PY_IMAGE (scripts/offline-images.sh)" - "$PY_IMAGE" >/dev/null
  rm -rf "$root"
}

build_kafka() {
  if [[ ! -f $LIBS/.complete ]]; then
    command -v mvn >/dev/null || die "Maven (mvn) is needed to resolve Kafka's jars (kafka/pom.xml)"
    mkdir -p "$LIBS"
    mvn -q -B -f kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$LIBS" -DincludeScope=runtime
    echo "$KAFKA_VERSION" > "$LIBS/.complete"
  fi
  local ctx=$WORK/kafka-context
  rm -rf "$ctx"; mkdir -p "$ctx/libs" "$ctx/bin"
  cp "$LIBS"/*.jar "$ctx/libs/"
  cat > "$ctx/bin/kafka-run-class.sh" <<'EOF'
#!/bin/sh
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.xml -cp "/opt/kafka/libs/*" "$@"
EOF
  printf '#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh org.apache.kafka.tools.BrokerApiVersionsCommand "$@"\n' > "$ctx/bin/kafka-broker-api-versions.sh"
  printf '#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh org.apache.kafka.tools.TopicCommand "$@"\n' > "$ctx/bin/kafka-topics.sh"
  printf '#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh org.apache.kafka.tools.ConsumerGroupCommand "$@"\n' > "$ctx/bin/kafka-consumer-groups.sh"
  printf '#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool "$@"\n' > "$ctx/bin/kafka-storage.sh"
  cat > "$ctx/bin/run" <<'EOF'
#!/bin/bash
# Like the official image: KAFKA_FOO_BAR=v → foo.bar=v (___ → -, __ → _), format once, run.
set -euo pipefail
conf=/opt/kafka/config/server.properties
: > "$conf"
for var in $(compgen -e); do
  case $var in
    KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_JVM_PERFORMANCE_OPTS|KAFKA_LOG4J_OPTS|KAFKA_JMX_OPTS|KAFKA_GC_LOG_OPTS|KAFKA_VERSION) ;;
    KAFKA_*)
      key=${var#KAFKA_}; key=${key,,}
      key=${key//___/-}; key=${key//__/@}; key=${key//_/.}; key=${key//@/_}
      echo "$key=${!var}" >> "$conf" ;;
  esac
done
grep -q '^log\.dirs=' "$conf" || echo "log.dirs=/tmp/kraft-combined-logs" >> "$conf"
log4j=-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml
java -Xmx256m "$log4j" -cp "/opt/kafka/libs/*" kafka.tools.StorageTool format --ignore-formatted \
  -t "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$conf"
exec java ${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G} -XX:+UseG1GC -Djava.awt.headless=true ${KAFKA_OPTS:-} "$log4j" \
  -cp "/opt/kafka/libs/*" kafka.Kafka "$conf"
EOF
  cat > "$ctx/log4j2.xml" <<'EOF'
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/><Logger name="org.apache.kafka" level="INFO"/>
    <Logger name="state.change.logger" level="WARN"/><Logger name="kafka.request.logger" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
EOF
  cat > "$ctx/tools-log4j2.xml" <<'EOF'
<Configuration status="ERROR"><Appenders><Console name="err" target="SYSTEM_ERR"><PatternLayout pattern="%p %m%n"/></Console></Appenders>
  <Loggers><Root level="ERROR"><AppenderRef ref="err"/></Root></Loggers></Configuration>
EOF
  chmod +x "$ctx"/bin/*
  cat > "$ctx/Dockerfile" <<EOF
# Offline stand-in for $KAFKA_IMAGE (scripts/offline-images.sh): Apache Kafka's own jars.
FROM $PY_IMAGE
LABEL news-ingest.offline-recipe=$KAFKA_RECIPE
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openjdk-17-jre-headless \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* \\
 && useradd --uid 1000 --create-home appuser \\
 && mkdir -p /opt/kafka/config /var/lib/kafka/data /tmp/kraft-combined-logs /etc/kafka/secrets /mnt/shared/config \\
 && chown -R appuser /opt/kafka/config /var/lib/kafka /tmp/kraft-combined-logs /etc/kafka/secrets /mnt/shared/config
COPY libs /opt/kafka/libs
COPY bin /opt/kafka/bin
COPY log4j2.xml tools-log4j2.xml /opt/kafka/config/
RUN chown appuser /opt/kafka/config/*.xml
ENV PATH=/opt/kafka/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER appuser
# As the official image: these three are volumes (a compose named volume on /var/lib/kafka/data
# with KAFKA_LOG_DIRS=/var/lib/kafka/data keeps the data; the image's default is /tmp).
VOLUME ["/etc/kafka/secrets", "/var/lib/kafka/data", "/mnt/shared/config"]
EXPOSE 9092
CMD ["/opt/kafka/bin/run"]
EOF
  docker build --force-rm --network host -t "$KAFKA_IMAGE" "$ctx" > "$WORK/kafka-build.log" 2>&1 \
    || { tail -20 "$WORK/kafka-build.log"; die "building the Kafka stand-in failed (log: $WORK/kafka-build.log)"; }
  rm -rf "$ctx"
}

mkdir -p "$WORK"
pull_or "$PY_IMAGE" python build_python
pull_or "$KAFKA_IMAGE" kafka build_kafka "$KAFKA_RECIPE"

