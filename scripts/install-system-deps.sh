#!/usr/bin/env bash
# The one place that knows which system tools ecap-ops needs and which Debian package
# brings each. `make run` and `make setup` need the "run" set; `make test` the "test" set.
#
#   bash scripts/install-system-deps.sh [run|test]          install what is missing
#   bash scripts/install-system-deps.sh --check [run|test]  only say what is missing
#
# run:  Java 17+ and Maven (Apache Kafka runs from its Maven Central jars), and Python's
#       venv module while .venv does not exist yet.
# test: the run set, plus kcat (an independent Kafka client the tests verify with),
#       Chromium and ChromeDriver (browser tests of the Dagster UI), docker-compose
#       (validates docker-compose.yml without a Docker engine), PostgreSQL's server
#       (the deployment's Dagster instance is tested against a real one) and Prometheus
#       with promtool (scrapes the exporter; checks and unit-tests the alert rules).
#
# Idempotent: when everything is present it prints nothing and exits 0. Missing packages
# are installed with apt-get as root or with passwordless sudo; otherwise it stops with
# one message naming every missing tool and the command that installs them (exit 1).
set -euo pipefail

profile=test
check_only=0
for arg in "$@"; do
  case "$arg" in
    run | test) profile="$arg" ;;
    --check) check_only=1 ;;
    -h | --help)
      sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install-system-deps.sh: unknown argument '${arg:0:40}' (expected run, test or --check)" >&2
      exit 2
      ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
missing=() # "tool (why)" for the message
packages=() # Debian packages that bring them

need() { # need TOOL PACKAGE WHY
  missing+=("$1 ($3)")
  packages+=("$2")
}

java_major() {
  # The major version of the java on PATH (8 for "1.8", 17 for "17.0.9"), or 0.
  local v
  v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1)"
  v="${v#1.}"
  [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}

check() {
  missing=()
  packages=()
  if ! command -v java >/dev/null 2>&1; then
    need java openjdk-17-jre-headless "Java 17+ runs Kafka"
  elif [ "$(java_major)" -lt 17 ]; then
    need java openjdk-17-jre-headless "Java 17+ runs Kafka; $(command -v java) is Java $(java_major)"
  fi
  command -v mvn >/dev/null 2>&1 || need mvn maven "fetches Kafka's jars"
  if [ ! -x "$here/.venv/bin/python" ]; then
    local py
    py="$(command -v python3.11 || command -v python3 || true)"
    if [ -z "$py" ]; then
      need python3 python3 "Python 3.11 for the project's .venv"
    elif ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      need "python3 -m venv" python3-venv "creates the project's .venv"
    fi
  fi
  [ "$profile" = test ] || return 0
  command -v kcat >/dev/null 2>&1 || need kcat kcat "the tests read topics back with it"
  command -v chromium >/dev/null 2>&1 || need chromium chromium "browser tests of the Dagster UI"
  command -v chromedriver >/dev/null 2>&1 || need chromedriver chromium-driver "browser tests of the Dagster UI"
  command -v docker-compose >/dev/null 2>&1 || need docker-compose docker-compose "validates docker-compose.yml"
  command -v promtool >/dev/null 2>&1 || need promtool prometheus "checks and unit-tests the Prometheus alert rules"
  command -v prometheus >/dev/null 2>&1 || need prometheus prometheus "scrapes the ecap-ops exporter in its tests"
  if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need initdb postgresql "tests the deployment's PostgreSQL instance"
  fi
}

explain() { # explain HEADLINE: the one message for a person who must install by hand
  {
    echo "$1"
    local m
    for m in "${missing[@]}"; do echo "  - $m"; done
    echo "Install them, then run make $profile again:"
    echo "  sudo apt-get install -y ${packages[*]}"
    echo "(on Debian or Ubuntu; or run 'sudo make system-deps' in $here)"
  } >&2
}

check
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$check_only" -eq 1 ]; then
  explain "make $profile needs these system tools, missing on this machine:"
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    sudo=(sudo -n)
  else
    explain "make $profile needs these system tools, missing on this machine (installing them needs root):"
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  explain "make $profile needs these system tools, missing on this machine (no apt-get here: install them with your package manager):"
  exit 1
fi

echo "installing system packages for make $profile: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"

check
if [ ${#missing[@]} -gt 0 ]; then
  explain "apt-get finished, but these system tools are still missing:"
  exit 1
fi
