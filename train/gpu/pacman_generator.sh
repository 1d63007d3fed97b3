#!/usr/bin/env bash
# A Pac-Man generator recipe on one GPU, as sessions 25 and 26 ran it on one NVIDIA H200
# lent for 15 minutes in all: the datasets the recipe names made from their seeds (those
# already there kept), the split of a step's time (benchmarks/train_throughput.py, whose
# samples/s sizes the run), then the recipe for as many steps as the time left allows.
#
#   bash train/gpu/pacman_generator.sh RECIPE RUN_DIR OUT_DIR [SECONDS]
#
# e.g. `bash train/gpu/pacman_generator.sh pacman_tiles_gpu runs/pacman-tiles-gpu OUT` (a
# tile generator of the shipped size from scratch, on all the seeker data: session 48)
# (`RATE=1700 bash ...` skips the benchmark and sizes the run by that rate).
# Needs maag installed (`pip install -e .`, or its wheel beside diffusers' in .whl/, as
# the lent machine had it) and a GPU; a recipe that starts from a run (`init_from`) needs
# that run's folder there. Writes into OUT_DIR its log (device.log, train.log), the run's
# recipe, spec and metrics, and its latest checkpoint's state.json and EMA weights in
# float16 (ema16.safetensors): put back as RUN_DIR/checkpoints/step-N/{state.json,
# ema.safetensors} (with `latest` naming step-N) for `maag export` to take.
set -uo pipefail
usage="usage: pacman_generator.sh RECIPE RUN_DIR OUT_DIR [SECONDS]"
recipe=train/recipes/${1:?$usage}.json
run=${2:?$usage}
out=${3:?$usage}
deadline=$(( $(date +%s) + ${4:-560} ))
mkdir -p "$out"
exec > >(tee -a "$out/device.log") 2>&1  # kept under OUT even if the run is cut short
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
# the installed command: `python3 -m maag` here would import the checkout's maag/ folder
maag_bin=$(command -v /tmp/site/bin/maag maag | head -1)
maag() { "$maag_bin" "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
df -h /dev/shm | tail -1
nproc

seconds_left() { echo $(( deadline - $(date +%s) )); }
started=$(date +%s)
workers=$(( $(nproc) > 4 ? $(nproc) : 4 ))
# each dataset the recipe names (data, more_data, val_data), made from its seeds as the
# model card says; one already there (a warm machine, a second call) is kept
make_data() {
    local name=$1 args
    case $name in
        pacman-train) args="--agent seeker --episodes 200" ;;
        pacman-val) args="--agent seeker --episodes 16 --seed 1000" ;;
        pacman-stumbler-train) args="--agent stumbler --episodes 100 --seed 7" ;;
        pacman-random-train) args="--agent random --episodes 60 --seed 11" ;;
        pacman-braided[1-8]-train)
            local n=${name//[^0-9]/}
            args="--agent seeker --episodes 30 --seed $(( 2000 + 100 * n )) --map games/mazes/braided_$n.txt" ;;
        pacman-more-train) args="--agent seeker --episodes 40 --seed 5000" ;;
        pacman-seek2-train) args="--agent seeker --episodes 300 --seed 6000" ;;
        *) echo "no command for data/$name: make it before the run"; return 1 ;;
    esac
    [[ -f data/$name/manifest.json ]] && return 0
    # shellcheck disable=SC2086
    maag data --game pacman --steps 1000 --workers "$workers" --quiet $args --out "data/$name"
}
datasets=$(python3 -c "
import json, sys
recipe = json.load(open(sys.argv[1]))
for path in [recipe['data'], *recipe.get('more_data', []), recipe['val_data']]:
    print(path.removeprefix('data/'))
" "$recipe") || exit 1
for name in $datasets; do
    make_data "$name" || exit 1
done
echo "[$(date +%T)] data: $(( $(date +%s) - started )) s"

# where a step's time goes on this machine; its samples/s over the recipe's loss (without
# the EMA update and the loop's bookkeeping) sizes the run. RATE=N (samples/s of an earlier
# run) skips it: the benchmark takes about a minute
rate=${RATE:-}
if [[ -z "$rate" ]]; then
    echo "[$(date +%T)] benchmark"
    timeout 150 python3 benchmarks/train_throughput.py --recipe "$recipe" --steps 10 --profile |
        tee /tmp/throughput.txt
    rate=$(grep -o '^[0-9,]* samples/s' /tmp/throughput.txt | tr -d , | grep -o '^[0-9]*')
fi
[[ "$rate" =~ ^[0-9]+$ ]] || { echo "no rate measured: 800 samples/s assumed"; rate=800; }
batch=$(python3 -c "import json; print(json.load(open('$recipe'))['batch_size'])")
# setup of the full run, by its episodes: loading them and reading their tile set, 0.19 s
# an episode on one process (session 48, 780 episodes on the CPU), then the map histories,
# 0.93 s an episode over the cores; 30 s besides for the start. The rate taken at 80%
episodes=$(python3 -c "
import json, sys
print(sum(json.load(open(f'data/{name}/manifest.json'))['episodes'] for name in sys.argv[1:]))
" $datasets) || exit 1
setup=$(( 30 + episodes * 19 / 100 + episodes * 93 / 100 / $(nproc) ))
steps=$(( rate * ($(seconds_left) - setup - 45) / batch * 8 / 10 ))
steps=$(( steps < 100 ? 100 : steps > 20000 ? 20000 : steps ))
echo "[$(date +%T)] benchmark: $rate samples/s; setup of $episodes episodes about $setup s; full run: $steps steps"

timeout $(( $(seconds_left) - 45 )) "$maag_bin" train generator --recipe "$recipe" \
    --out "$run" --steps "$steps" --quiet \
    2>&1 | while IFS= read -r line; do echo "[$(date +%T)] $line"; done >"$out/train.log"
echo "[$(date +%T)] train exit ${PIPESTATUS[0]} at $(( $(date +%s) - started )) s"
tail -5 "$out/train.log"
cp "$run"/{recipe.json,spec.json,metrics.jsonl} "$out/" 2>/dev/null
python3 - "$out" "$run" <<'EOF'
import sys
from pathlib import Path
from safetensors.torch import load_file, save_file
run = Path(sys.argv[2]) / "checkpoints"
if not list(run.glob("step-*")):
    sys.exit("no checkpoint was written: the run ended before its first")
latest = sorted(run.glob("step-*"))[-1]
weights = load_file(str(latest / "ema.safetensors"))
ema = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
save_file(ema, f"{sys.argv[1]}/ema16.safetensors", metadata={"checkpoint": latest.name})
(Path(sys.argv[1]) / "state.json").write_text((latest / "state.json").read_text())
print("saved", latest.name)
EOF
