#!/usr/bin/env bash
# Every benchmark and accuracy figure of the README, one after the other (run on a quiet machine; ~27 min on
# 2 cores). Output: docs/measurements/<name>.txt (each file starts with the command and the machine).
# Arguments: the names of the runs to do (default: all).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=docs/measurements
mkdir -p "$OUT"
bash tools/setup_env.sh
ONLY=" $* "  # names given on the command line: run just those (e.g. `objects eval_objects_occluded`)
run() {  # name, then the pose-perception arguments
  local name=$1; shift
  [[ "$ONLY" == "  " || "$ONLY" == *" $name "* ]] || return 0
  echo "== $name: pose-perception $*"
  { echo "\$ pose-perception $*"; echo "date: $(date -u +%Y-%m-%dT%H:%MZ)";
    bash tools/with_env.sh pose-perception "$@" 2>&1 | grep -v -E '^(W0000|I0000|INFO: Created TensorFlow)'; } > "$OUT/$name.txt"
  tail -n 12 "$OUT/$name.txt"
}
run transport bench transport --seconds 10
run transport_default_dds bench transport --seconds 10 --profile default
run human bench human
run objects bench objects
run radar bench radar
run mesh bench mesh --max-faces 5000
run eval_objects_no_occlusion eval objects --occlusion 0,0
run eval_objects_occluded eval objects --occlusion 0.3,0.5
run eval_human3d eval human-3d --detected
run eval_mesh eval mesh
run eval_radar radar eval
if [[ "$ONLY" == "  " || "$ONLY" == *" eval_objects_seeds "* ]]; then
  bash tools/eval_objects_seeds.sh  # docs/measurements/eval_objects_seeds.txt (~7 min, two runs at a time)
fi
