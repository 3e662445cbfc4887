#!/usr/bin/env bash
# Installs the system packages ecap-ops' tests and local Kafka need, when missing:
# Java 17+ and Maven (Kafka from its jars), kcat (an independent Kafka client the tests
# verify with), Chromium and ChromeDriver (browser tests of the Dagster UI) and
# docker-compose (validates docker-compose.yml without a Docker engine) and PostgreSQL's
# server (the deployment's Dagster instance is tested against a real one).
set -euo pipefail
need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kcat >/dev/null || need+=(kcat)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
