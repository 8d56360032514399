#!/usr/bin/env bash
# An arm64 sysroot for `edgeadapt bench int8-cpus --emulate aarch64:<model> --arm64-root ROOT`: Debian's arm64
# Python and its libraries, extracted (not installed) from the Debian archive, plus the arm64 wheels of
# edgeadapt's runtime dependencies (numpy, onnxruntime, tokenizers, sentencepiece, typer, rich) from PyPI at the
# versions this machine's Python has. qemu-aarch64 runs that Python with `-L ROOT`, so onnxruntime executes its
# real arm64 kernels (NEON, dot product, i8mm, SME) as the emulated CPU model's hardware capabilities select them.
#
# usage: sudo bash benchmarks/arm64_sysroot.sh [ROOT]      (default /opt/arm64-root; Debian 12 host, root for apt)
#        PYTHON=.venv/bin/python to read the versions from another interpreter
set -euo pipefail

ROOT=${1:-/opt/arm64-root}
PYTHON=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
SITE="$ROOT/opt/edgeadapt-site"  # edgeadapt.bench.int8_cpus.ARM64_SITE

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
# QEMU 7.2 (Debian 12) emulates SME wrongly (int8 logits off by ~10 on `-cpu max`); QEMU 10 from
# bookworm-backports gets it right. Its statically linked qemu-aarch64 goes into the sysroot (opt/qemu-aarch64),
# which `bench int8-cpus` and tests/test_int8_arm64.py prefer to the system's.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ "$codename" = bookworm ]; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/edgeadapt-backports.list
fi
apt-get update -q >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python_version=$(apt-cache depends python3:arm64 | sed -n 's/.*Depends: \(python3\.[0-9]*\):arm64.*/\1/p' | head -1)
python_version=${python_version:-python3.11}
packages="$python_version-minimal lib$python_version-minimal lib$python_version-stdlib libc6 libgcc-s1 libstdc++6
  zlib1g libssl3 libexpat1 libffi8 libbz2-1.0 liblzma5 libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libuuid1
  libcrypt1 libnsl2 libtirpc3 libdb5.3 libgdbm6"
(cd "$work" && chmod 777 . && apt-get download -q $(for p in $packages; do echo "$p:arm64"; done) >/dev/null)
mkdir -p "$ROOT"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
mkdir -p "$work/qemu" "$ROOT/opt"
(cd "$work/qemu" && chmod 777 . && { apt-get download -q qemu-user/bookworm-backports 2>/dev/null || apt-get download -q qemu-user; } >/dev/null)
dpkg-deb -x "$work"/qemu/qemu-user_*.deb "$work/qemu/x"
cp "$work/qemu/x/usr/bin/qemu-aarch64" "$ROOT/opt/qemu-aarch64"  # statically linked

# QEMU user mode shows the guest the host's /proc/cpuinfo (x86), which onnxruntime's cpuinfo library cannot parse
# on arm64 (it crashes at import); QEMU looks under -L ROOT first, so an arm64 one there is what the guest reads.
# `bench int8-cpus` rewrites it with each emulated model's MIDR (edgeadapt.bench.int8_cpus.write_arm64_cpuinfo);
# this one (a Cortex-A76's) serves the check below.
mkdir -p "$ROOT/proc"
for cpu in 0 1; do
    printf 'processor\t: %s\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' "$cpu"
done > "$ROOT/proc/cpuinfo"
[ -z "${SUDO_USER:-}" ] || chown -R "$SUDO_USER" "$ROOT/proc"  # the benchmark and the tests rewrite it

short=${python_version#python}
# The versions this machine's edgeadapt runs with (so that both sides of a comparison run the same onnxruntime);
# where $PYTHON has none of them (CI builds this before its venv), the newest, as pip gives a fresh venv.
pins=$("$PYTHON" - <<'EOF'
from importlib.metadata import PackageNotFoundError, version
pins = []
for name in ("numpy", "onnxruntime", "tokenizers", "sentencepiece", "typer", "rich"):
    try:
        pins.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        pins.append(name)
print(" ".join(pins))
EOF
)
pip=("$PYTHON" -m pip)
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    python3 -m venv "$work/pip" && pip=("$work/pip/bin/python" -m pip)
fi
rm -rf "$SITE"
"${pip[@]}" install -q --no-warn-conflicts --target "$SITE" --only-binary=:all: --python-version "$short" \
    --implementation cp --abi "cp${short/./}" --abi abi3 --abi none --platform manylinux_2_28_aarch64 \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 $pins
QEMU_CPU=cortex-a76 "$ROOT/opt/qemu-aarch64" -L "$ROOT" "$ROOT/usr/bin/$python_version" -c \
    "import sys; sys.path.insert(0, '$SITE'); import onnxruntime, numpy; print('arm64 sysroot ready:', sys.version.split()[0], 'onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__)"
echo "then: edgeadapt bench int8-cpus ... --emulate aarch64:cortex-a76 --arm64-root $ROOT"
