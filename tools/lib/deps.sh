# Installs the Debian packages choreo needs when they are missing.
# Sourced by tools/test and tools/demo; defines choreo_install_deps.

# build-essential brings gcc's sanitizer runtimes (libasan8, libubsan1 and
# libtsan2, through libgcc-12-dev) for the sanitizer builds of tools/test.
CHOREO_PACKAGES="build-essential pkg-config meson ninja-build python3 nats-server \
libnats-dev libmsgpack-dev libcriterion-dev libsqlite3-dev sqlite3 openssl \
libmicrohttpd-dev prometheus postgresql libpq-dev"

choreo_install_deps() {
    local missing=() p
    for p in $CHOREO_PACKAGES ${CHOREO_EXTRA_PACKAGES:-}; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "choreo: missing packages: ${missing[*]}" >&2
        echo "choreo: run as root:  $cmd" >&2
        return 1
    fi
    echo "choreo: installing ${missing[*]}" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}" >&2
}
