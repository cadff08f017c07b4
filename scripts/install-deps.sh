#!/usr/bin/env bash
# Installs the Debian packages the build needs, only those that are missing (make and
# python3 build better-sqlite3, the reference PDS's database, for the login tests).
# Runs apt-get as root (or through sudo). With --program, only what building the program
# and its .deb needs (deploy/Dockerfile's build stage): no benchmarks, fuzzers or node.
# The openssl program makes the certificates of the TLS end-to-end test. chromium is
# the browser of the console's test (tests/e2e/console.test.mjs, driven by npm
# puppeteer-core); headless, it needs none of its Recommends (fonts-liberation, upower,
# mesa: fontconfig brings DejaVu, and --disable-gpu draws in software).
set -euo pipefail

# The program (GoogleTest too: CMakeLists.txt looks for it whatever is built), and
# `make package` (dpkg-shlibdeps in dpkg-dev, and `file`, which CPack's DEB generator
# uses to find the program's libraries).
program_packages=(
  g++ cmake ninja-build pkg-config make
  libboost1.81-dev libssl-dev libdeflate-dev libsqlite3-dev libcurl4-openssl-dev
  libcbor-dev nlohmann-json3-dev libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev
  dpkg-dev file
)
packages=("${program_packages[@]}")
if [ "${1:-}" != "--program" ]; then
  packages+=(
    python3 libbenchmark-dev
    clang libclang-rt-14-dev time
    nodejs npm
    openssl
    chromium
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from elsewhere than Debian (the machine image ships them).
filtered=()
for p in "${missing[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null || filtered+=("$p") ;;
    npm) command -v npm >/dev/null || filtered+=("$p") ;;
    *) filtered+=("$p") ;;
  esac
done
missing=("${filtered[@]+"${filtered[@]}"}")

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
