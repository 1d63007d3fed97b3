#!/usr/bin/env bash
# Pac-Man generator recipe stage 14 (the model card's stage 15) on one GPU, as session 25
# ran it on one NVIDIA H200 lent for 15 minutes in all: the data regenerated from its
# seeds, a short check run, then stage 8's recipe at a 16x larger batch for as many steps
# as the time left allows. Since then it also logs everything into OUT_DIR/device.log and
# first prints the benchmark's split of a step's time (benchmarks/train_throughput.py).
#
#   bash train/gpu/pacman_full_stage14.sh OUT_DIR [SECONDS]
#
# Needs maag installed (`pip install -e .`, or its wheel beside diffusers' in .whl/, as
# the lent machine had it) and a GPU. Writes into OUT_DIR the run's recipe, metrics and
# log, and its latest checkpoint's state.json and EMA weights in float16
# (ema16.safetensors): put back as runs/pacman-full-stage14/checkpoints/step-N/
# {state.json,ema.safetensors} (with `latest` naming step-N) for `maag export` to take.
set -uo pipefail
out=${1:?usage: pacman_full_stage14.sh OUT_DIR [SECONDS]}
deadline=$(( $(date +%s) + ${2:-560} ))
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
data() { maag data --game pacman --steps 1000 --workers "$workers" --quiet "$@"; }
data --agent seeker --episodes 200 --out data/pacman-train &&
data --agent seeker --episodes 16 --seed 1000 --out data/pacman-val &&
data --agent stumbler --episodes 100 --seed 7 --out data/pacman-stumbler-train &&
data --agent random --episodes 60 --seed 11 --out data/pacman-random-train || exit 1
for n in 1 2 3 4; do
    data --agent seeker --episodes 30 --seed $(( 2000 + 100 * n )) \
        --map "games/mazes/braided_$n.txt" --out "data/pacman-braided$n-train" || exit 1
done
echo "data: $(( $(date +%s) - started )) s"

recipe=train/recipes/pacman_full_stage14.json
# where a step's time goes on this machine (inputs, forward, backward, waiting for batches)
timeout 120 python3 benchmarks/train_throughput.py --recipe "$recipe" --steps 20 || true
# the check run: stage 14's recipe on the held-out episodes alone, 40 steps
check() {  # loader processes
    python3 - "$recipe" "$1" <<'EOF'
import json, sys
recipe = json.load(open(sys.argv[1]))
recipe |= {"data": "data/pacman-val", "more_data": [], "val_data": "", "steps": 40,
           "checkpoint_every": 40, "log_every": 20, "loader_workers": int(sys.argv[2])}
json.dump(recipe, open("/tmp/check.json", "w"))
EOF
    rm -rf /tmp/check-run
    maag train generator --recipe /tmp/check.json --out /tmp/check-run --quiet 2>&1 | tail -5
    tail -1 /tmp/check-run/metrics.jsonl 2>/dev/null | python3 -c \
        "import json,sys; print(int(json.loads(sys.stdin.read())['samples_per_s']))"
}
loader=$(python3 -c "import json; print(json.load(open('$recipe'))['loader_workers'])")
rate=$(check "$loader" | tail -1)
if ! [[ "$rate" =~ ^[0-9]+$ ]]; then
    echo "check run with $loader loader processes failed; again without them"
    loader=0
    rate=$(check 0 | tail -1)
    [[ "$rate" =~ ^[0-9]+$ ]] || { echo "check run failed"; exit 1; }
fi
batch=$(python3 -c "import json; print(json.load(open('$recipe'))['batch_size'])")
# setup of the full run (loading 480 episodes, their palette and map histories, the close
# calls): about 150 s
steps=$(( rate * ($(seconds_left) - 150 - 45) / batch * 9 / 10 ))
steps=$(( steps < 200 ? 200 : steps > 20000 ? 20000 : steps ))
echo "check run: $rate samples/s with $loader loader processes; full run: $steps steps"

timeout $(( $(seconds_left) - 45 )) "$maag_bin" train generator --recipe "$recipe" \
    --out runs/pacman-full-stage14 --steps "$steps" --loader-workers "$loader" --quiet \
    >"$out/train.log" 2>&1
echo "train exit $? at $(( $(date +%s) - started )) s"
tail -5 "$out/train.log"
cp runs/pacman-full-stage14/{recipe.json,spec.json,metrics.jsonl} "$out/" 2>/dev/null
python3 - "$out" <<'EOF'
import sys
from pathlib import Path
from safetensors.torch import load_file, save_file
run = Path("runs/pacman-full-stage14/checkpoints")
if not list(run.glob("step-*")):
    sys.exit("no checkpoint was written: the run ended before its first")
latest = sorted(run.glob("step-*"))[-1]
ema = {k: v.half().contiguous() for k, v in load_file(str(latest / "ema.safetensors")).items()}
save_file(ema, f"{sys.argv[1]}/ema16.safetensors", metadata={"checkpoint": latest.name})
(Path(sys.argv[1]) / "state.json").write_text((latest / "state.json").read_text())
print("saved", latest.name)
EOF
