#!/usr/bin/env bash
# Issue 25's GPU measurements in one run, for a machine lent an NVIDIA GPU that has no Node.
#
#   scripts/gpu-check.sh pack   here (Node, node_modules, dist built, Fashion-MNIST installed):
#                               writes .gpu-check/ (ignored by git): Node, the production
#                               node_modules with dist, the dataset and the Vulkan loader,
#                               compressed to fit a device call's 64 MiB with the repository.
#   scripts/gpu-check.sh run    there, from the repository root, with .gpu-check carried: unpacks
#                               what is missing, then, each bounded by a timeout (~8 min in all),
#                               `bench step` of cnn, resnet8gn and resnet18gn at batch 20 on
#                               webgpu (with `--peer torch --peer-device cuda` where python3's
#                               torch sees CUDA), and one FedSLR round of
#                               examples/fmnist-fedslr.yaml on webgpu (1 worker) and on wasm (one
#                               worker per core, then 1 worker). Writes at most 8 files under $OUT (default
#                               ./gpu-check-out): env.txt, log.txt, bench-MODEL.json,
#                               round-NAME.jsonl (the run's metrics, times included).
#
# Device call: carry [".gpu-check"], command `bash scripts/gpu-check.sh run`, timeout_s 600.
# For a check without a GPU (lavapipe), GPU_CHECK_STEPS, GPU_CHECK_MODELS and GPU_CHECK_ROUND_SET
# (extra `--set k=v` words for the rounds) make it shorter.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=${GPU_CHECK_BUNDLE:-$ROOT/.gpu-check}
FASHION=${GPU_CHECK_FASHION:-/usr/share/datasets/fashion-mnist}
# A device call carries at most 64 MiB: the bundle and the working tree together.
CALL_LIMIT_BYTES=$((64 * 1024 * 1024))

die() {
  echo "gpu-check: $*" >&2
  exit 2
}

pack() {
  command -v node >/dev/null || die "pack needs node"
  [ -f "$ROOT/dist/cli/main.js" ] || die "pack needs dist/ (npm run build)"
  local idx
  for idx in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$FASHION/$idx.gz" ] || [ -f "$FASHION/$idx" ] ||
      die "no $FASHION/$idx(.gz): install dataset-fashion-mnist or set GPU_CHECK_FASHION"
  done
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/data" "$BUNDLE/gl" || die "cannot create $BUNDLE"
  echo "gpu-check: compressing node (about a minute)"
  local node
  node=$(mktemp) && { strip -o "$node" "$(command -v node)" 2>/dev/null || cp "$(command -v node)" "$node"; } &&
    xz -T0 -9 -c "$node" >"$BUNDLE/node.xz" || die "xz of node failed"
  rm -f "$node"
  for idx in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -f "$FASHION/$idx.gz" ]; then zcat "$FASHION/$idx.gz"; else cat "$FASHION/$idx"; fi |
      xz -T0 -9 >"$BUNDLE/data/$idx.xz" || die "xz of $idx failed"
  done
  # The production dependencies (npm ls), less what a Node run of the CLI never reads: other
  # platforms' Dawn, the MNIST package's data, source maps, types, tfjs's browser bundles and
  # per-file ES modules (Node loads each tfjs package's dist/*.node.js) and fedslr's web client.
  local deps
  deps=$(cd "$ROOT" && npm ls --omit=dev --all --parseable 2>/dev/null |
    sed "s|^$ROOT/||" | grep '^node_modules/.' | sort -u) || die "npm ls failed"
  # shellcheck disable=SC2086 # one word per package directory
  (cd "$ROOT" && tar -c --exclude='node_modules/mnist' \
    --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
    --exclude='node_modules/webgpu/dist/linux-arm64' \
    --exclude='*.map' --exclude='*.d.ts' --exclude='*.min.js' --exclude='*.es2017.js' \
    --exclude='*.fesm.js' --exclude='*/miniprogram' --exclude='*_test.js' \
    --exclude='node_modules/@tensorflow/*/dist/*/*' --exclude='dist/web' \
    --exclude='node_modules/@tensorflow/*/dist/tf-core.js' \
    --exclude='node_modules/@tensorflow/*/dist/tf-backend-*[!e].js' \
    dist bench/step_torch.py $deps | xz -T0 -9 >"$BUNDLE/app.tar.xz") ||
    die "packing node_modules and dist failed"
  # Dawn loads libvulkan.so.1, which the GPU machine may lack (its driver brings the ICD).
  (cd "$BUNDLE/gl" && apt-get download libvulkan1 >/dev/null 2>&1) ||
    echo "gpu-check: apt-get download libvulkan1 failed; the run will need a Vulkan loader there"
  # What a device call sends: files git tracks or does not ignore, and the bundle.
  local tree bundle
  tree=$(cd "$ROOT" && git ls-files -z -co --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
  bundle=$(find "$BUNDLE" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
  echo "gpu-check: $BUNDLE is $((bundle / 1048576)) MiB, the working tree $((tree / 1048576)) MiB"
  [ $((tree + bundle)) -le "$CALL_LIMIT_BYTES" ] ||
    die "bundle and working tree exceed a device call's 64 MiB"
}

# Runs "$@" with a time limit (at most what is left of GPU_CHECK_BUDGET seconds, 480 by
# default, so the whole check ends inside a 600 s device call), logging its exit status and time.
timed() {
  local limit=$1
  shift
  local left=$((${GPU_CHECK_BUDGET:-480} - SECONDS))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 15 ]; then
    echo "skipped (time budget spent): $*" >>"$LOG"
    return 124
  fi
  local start=$SECONDS
  echo "+ $*" >>"$LOG"
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "  exit $rc after $((SECONDS - start)) s (limit $limit s)" >>"$LOG"
  return $rc
}

setup() {
  mkdir -p "$OUT" || die "cannot create $OUT"
  # GPU_CHECK_NODE=bundled uses the bundle's Node even where one is installed (to test it).
  NODE=$(command -v node || true)
  [ "${GPU_CHECK_NODE:-}" = bundled ] && NODE=
  if [ -z "$NODE" ] || ! "$NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
    [ -f "$BUNDLE/node.xz" ] || die "no Node >= 20 here and no $BUNDLE/node.xz (run pack, carry it)"
    NODE=/tmp/fedslr-gpu-check/node
    mkdir -p /tmp/fedslr-gpu-check && xz -dc "$BUNDLE/node.xz" >"$NODE" && chmod +x "$NODE" ||
      die "unpacking node failed"
  fi
  if [ ! -f "$ROOT/dist/cli/main.js" ] || [ ! -d "$ROOT/node_modules/@tensorflow/tfjs-core" ]; then
    [ -f "$BUNDLE/app.tar.xz" ] || die "no dist/ or node_modules/ and no $BUNDLE/app.tar.xz"
    (cd "$ROOT" && xz -dc "$BUNDLE/app.tar.xz" | tar -x) || die "unpacking app.tar.xz failed"
  fi
  local idx
  mkdir -p "$ROOT/data/fashion-mnist"
  for idx in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -f "$BUNDLE/data/$idx.xz" ] && [ ! -f "$ROOT/data/fashion-mnist/$idx" ]; then
      xz -dc "$BUNDLE/data/$idx.xz" >"$ROOT/data/fashion-mnist/$idx" || die "unpacking $idx failed"
    fi
  done
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    for deb in "$BUNDLE"/gl/*.deb; do [ -f "$deb" ] && dpkg -x "$deb" / && ldconfig; done
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
}

environment() {
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "node: $NODE $("$NODE" --version)"
    echo "cpus: $(nproc)"
    echo "vulkan loader: $(ldconfig -p 2>/dev/null | grep -m1 'libvulkan\.so\.1' || echo none)"
    echo "VK_DRIVER_FILES: ${VK_DRIVER_FILES:-unset}"
    echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
    echo "python3: ${PYTHON:-none}"
    echo "torch: $TORCH"
  } >"$OUT/env.txt"
}

run_checks() {
  OUT=${OUT:-$ROOT/gpu-check-out}
  LOG=$OUT/log.txt
  setup
  cd "$ROOT" || die "cannot cd to $ROOT"
  mkdir -p /tmp/fedslr-gpu-check
  : >"$LOG"
  PYTHON=$(command -v python3 || true)
  # torch found by importing it (no pip): "version cuda-available", or why not.
  TORCH=none
  local peer=()
  if [ -n "$PYTHON" ]; then
    TORCH=$("$PYTHON" -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "no-cuda")' 2>&1 | tail -1)
    case "$TORCH" in
    *' cuda') peer=(--peer torch --peer-device cuda --python "$PYTHON") ;;
    esac
  fi
  environment
  [ ${#peer[@]} -gt 0 ] || echo "no torch with CUDA ($TORCH): bench step runs without the peer" >>"$LOG"

  local steps=${GPU_CHECK_STEPS:-30} warmup=${GPU_CHECK_WARMUP:-5} model limit
  for model in ${GPU_CHECK_MODELS:-cnn resnet8gn resnet18gn}; do
    # resnet18gn: 35 steps of ~0.3 s on an H200 (issue 25) plus shader compilation.
    case $model in resnet18gn) limit=90 ;; *) limit=60 ;; esac
    timed $limit "$NODE" dist/cli/main.js bench step --model "$model" --batch 20 --backend webgpu \
      --steps "$steps" --warmup "$warmup" --rounds 3 ${peer[@]+"${peer[@]}"} --json \
      >"$OUT/bench-$model.json" 2>>"$LOG"
  done

  # One FedSLR round of the example (evaluated), on webgpu and on wasm.
  local round=(--set rounds=1 --set evalEvery=1 --quiet)
  local extra=()
  for kv in ${GPU_CHECK_ROUND_SET:-}; do extra+=(--set "$kv"); done
  local name backend workers
  for name in webgpu wasm-all wasm-1; do
    case $name in
    webgpu) backend=webgpu workers=1 ;;
    wasm-1) backend=wasm workers=1 ;;
    wasm-all) backend=wasm workers=0 ;;
    esac
    rm -rf "/tmp/fedslr-gpu-check/run-$name"
    timed 90 "$NODE" dist/cli/main.js run examples/fmnist-fedslr.yaml \
      --out "/tmp/fedslr-gpu-check/run-$name" "${round[@]}" ${extra[@]+"${extra[@]}"} \
      --set "train.backend=$backend" --set "runtime.workers=$workers" >>"$LOG" 2>&1 &&
      cp "/tmp/fedslr-gpu-check/run-$name/metrics.jsonl" "$OUT/round-$name.jsonl"
  done
  echo "gpu-check: done; results in $OUT" | tee -a "$LOG"
}

case "${1:-}" in
pack) pack ;;
run) run_checks ;;
*) die "usage: scripts/gpu-check.sh pack|run" ;;
esac
