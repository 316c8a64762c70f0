#!/usr/bin/env bash
# The device check of the real GPU path, for a machine with one NVIDIA GPU, offline, in under ~8 minutes:
#   doctor -> synthetic shards -> records 5, 12, 21 and the newest record with code, ~30 steps each,
#   through speedcopilot's session, runner and log parser (bench/gpu_smoke.py).
#
# Usage: bench/gpu_smoke.sh --upstream PATH [--benchmark PATH] [--records 5,12,21,newest] [--steps 30] [--dry-run]
#   --upstream   a clone (work tree) of KellerJordan/modded-nanogpt: the records' code is read from it
#   --benchmark  a clone of facebookresearch/llm-speedrunner (templates for records 1-3, hints)
#   --dry-run    everything up to the GPU part: sync, synthetic shards, doctor; exits 0 after the doctor
# Needs: speedcopilot installed in a Python whose torch is a CUDA build, with torchrun on PATH (the doctor
# says what is missing). Everything it writes goes to a temporary folder (kept with --keep).
# Exit: 0 all good; 1 a record mismatched; 2 the doctor says a run would fail; 3 bad usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
upstream="" benchmark="" records="5,12,21,newest" steps=30 dry_run=0 keep=0 timeout=150
while [ $# -gt 0 ]; do
  case "$1" in
    --upstream) upstream="$2"; shift 2 ;;
    --benchmark) benchmark="$2"; shift 2 ;;
    --records) records="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu_smoke: unknown argument $1 (see --help)" >&2; exit 3 ;;
  esac
done
if [ -z "$upstream" ] || [ ! -f "$upstream/README.md" ]; then
  echo "gpu_smoke: pass --upstream PATH, a work tree of modded-nanogpt (the records' code comes from it)" >&2
  exit 3
fi

sc="${SPEEDCOPILOT:-}"
if [ -z "$sc" ]; then
  if [ -x "$repo/.venv/bin/speedcopilot" ]; then sc="$repo/.venv/bin/speedcopilot"; else sc="$(command -v speedcopilot || true)"; fi
fi
[ -n "$sc" ] || { echo "gpu_smoke: speedcopilot is not installed (make install, or set SPEEDCOPILOT)" >&2; exit 3; }
py="$(dirname "$sc")/python"
[ -x "$py" ] || py="$(command -v python3)"

work="$(mktemp -d "${TMPDIR:-/tmp}/speedcopilot-gpu-smoke.XXXXXX")"
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" XDG_CONFIG_HOME="$work/config" XDG_DATA_HOME="$work/share"
export SPEEDCOPILOT_SESSION_DIR="$work/sessions" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
echo "== gpu_smoke $(date -u +%Y-%m-%dT%H:%M:%SZ) · $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?') · work $work"

t0=$SECONDS
sync_args=(records sync --path "$upstream")
[ -n "$benchmark" ] && sync_args+=(--benchmark "$benchmark")
"$sc" "${sync_args[@]}" | tail -n 1
"$sc" data prepare --track nanogpt --synthetic --tokens 40000000 --train-shards 2
echo "== doctor"
set +e
"$sc" doctor --track nanogpt --gpus 1 --record 21
doctor_rc=$?
set -e
if [ "$dry_run" = 1 ]; then
  echo "== dry run: stops before the GPU part (doctor exit $doctor_rc; $((SECONDS - t0)) s so far)"
  exit 0
fi
if [ "$doctor_rc" != 0 ]; then
  echo "gpu_smoke: the doctor says a run would fail here; fix the lines above first" >&2
  exit 2
fi
echo "== records $records, $steps steps each, 1 GPU"
set +e
"$py" "$repo/bench/gpu_smoke.py" --records "$records" --steps "$steps" --timeout "$timeout" \
  --sessions "$work/sessions" --json "$work/gpu_smoke.json"
rc=$?
set -e
echo "== done in $((SECONDS - t0)) s (rows: $work/gpu_smoke.json)"
exit $rc
