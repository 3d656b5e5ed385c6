#!/usr/bin/env bash
# Installs what the ScienceWorld environment needs, from the package registries only:
#   - the PyPI wheel scienceworld==1.2.3, from which scienceworld.jar and tasks.json are extracted
#     into $SCIENCEWORLD_HOME (default ~/.cache/eef/scienceworld-1.2.3);
#   - a Java runtime (Debian's openjdk-17-jre-headless) if `java` is missing.
# Nothing is committed to the repository; the jar is never downloaded at run time.
set -euo pipefail

version=1.2.3
dest="${SCIENCEWORLD_HOME:-$HOME/.cache/eef/scienceworld-$version}"

if ! command -v java >/dev/null 2>&1; then
    echo "setup-scienceworld: installing a Java runtime (openjdk-17-jre-headless)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

if [ -f "$dest/scienceworld.jar" ] && [ -f "$dest/tasks.json" ]; then
    echo "setup-scienceworld: ScienceWorld $version already in $dest"
    exit 0
fi

python=""
for p in python3 python; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -m pip --version >/dev/null 2>&1; then python="$p"; break; fi
done
if [ -z "$python" ]; then
    echo "setup-scienceworld: needs python3 with pip to download the wheel (apt-get install python3-pip)" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "setup-scienceworld: downloading scienceworld==$version from PyPI"
"$python" -m pip download --quiet --no-deps --only-binary=:all: "scienceworld==$version" -d "$tmp"
mkdir -p "$dest"
"$python" - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(src, "scienceworld-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("scienceworld/scienceworld.jar", "scienceworld/tasks.json"):
        target = os.path.join(dest, os.path.basename(name))
        with z.open(name) as f, open(target + ".part", "wb") as out:
            out.write(f.read())
        os.replace(target + ".part", target)
PY
echo "setup-scienceworld: installed ScienceWorld $version in $dest"
