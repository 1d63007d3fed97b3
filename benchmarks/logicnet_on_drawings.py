"""How well a model's LogicNet reads the generator's frames, beside the engine's.

    python benchmarks/logicnet_on_drawings.py --model models/pacman --data data/pacman-val-b
        [--logicnet models/other] [--observer] [--count 2048]

In play LogicNet decides each step's events from frames the generator drew, while it is
trained and scored (`maag eval`) on the engine's. This takes `--count` random held-out
transitions, half of them where an event fires, and has the model's generator draw the
last context frame of each (teacher-forced from the data's frames before it, told the
true values, snapped to its palette: `maag.train.logicnet.DrawnFrames`). For every event
it prints recall on the engine's frames and with that frame drawn, and the false calls of
each; `--logicnet` scores another folder's LogicNet on the same drawings. With
`--observer` it scores the folder's observer, and the frame drawn is each transition's
outcome (told its events), which the observer reads.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

import maag
from maag.data import Dataset
from maag.errors import MaagError
from maag.train.logicnet import DrawnFrames
from maag.transitions import load_episodes, logicnet_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model folder whose generator draws")
    parser.add_argument("--data", required=True, help="held-out dataset folder")
    parser.add_argument("--logicnet", help="model folder whose LogicNet reads (default --model)")
    parser.add_argument("--observer", action="store_true", help="score its observer instead")
    parser.add_argument("--count", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    reader = maag.load(args.logicnet or args.model)
    logicnet = reader.observer if args.observer else reader.logicnet
    if logicnet is None:
        raise MaagError(
            f"{args.logicnet or args.model} has no {'observer' if args.observer else 'LogicNet'}"
        )
    spec = Dataset(args.data).spec
    episodes = load_episodes(args.data)
    context_frames, observes = logicnet.config.context_frames, logicnet.config.observes
    drawn = DrawnFrames(episodes, spec, args.model, context_frames, args.count, args.seed, observes)
    calls = {"engine's frames": [], "frame drawn": []}
    truth = []
    for start in range(0, args.count, 256):
        rows = np.arange(start, min(start + 256, args.count))
        batch = drawn.transitions.gather(drawn.episode[rows], drawn.target[rows])
        truth.append(batch["events"].numpy())
        with torch.inference_mode():
            calls["engine's frames"].append(logicnet_logits(logicnet, batch).argmax(-1).numpy())
            if observes:
                batch["target"] = torch.from_numpy(drawn.frames[rows])
            else:
                batch["context"][:, -1] = torch.from_numpy(drawn.frames[rows])
            calls["frame drawn"].append(logicnet_logits(logicnet, batch).argmax(-1).numpy())
    fired = np.concatenate(truth) > 0
    said = {name: np.concatenate(c) > 0 for name, c in calls.items()}
    which = "outcome" if observes else "last context frame"
    print(f"{args.count} transitions of {args.data}, the {which} drawn by {args.model}")
    print("| event | fires | recall: engine's frames, drawn | false calls: engine's, drawn |")
    print("|---|---|---|---|")
    for k, event in enumerate(logicnet.config.event_names):
        fires = int(fired[:, k].sum())
        recall = [(s[:, k] & fired[:, k]).sum() / fires if fires else np.nan for s in said.values()]
        false = [int((s[:, k] & ~fired[:, k]).sum()) for s in said.values()]
        print(f"| {event} | {fires} | {recall[0]:.3f}, {recall[1]:.3f} | {false[0]}, {false[1]} |")


if __name__ == "__main__":
    try:
        main()
    except MaagError as exc:  # a user's mistake: one line, no traceback
        sys.exit(f"logicnet_on_drawings: error: {exc}")
