"""The `maag` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from maag.errors import MaagError

if TYPE_CHECKING:
    from maag.spec import Game

GAME_NAMES = ("traveler", "pong", "pacman")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= `minimum`."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return parse


_positive, _natural = _int_at_least(1), _int_at_least(0)


def _default_agent(game: str) -> str:
    from maag.games import get_game

    return next(iter(get_game(game).agents))


def cmd_data(args: argparse.Namespace) -> None:
    from maag.data import write_dataset

    manifest = write_dataset(
        game=args.game,
        agent=args.agent or _default_agent(args.game),
        episodes=args.episodes,
        steps=args.steps,
        out=args.out,
        seed=args.seed,
        workers=args.workers,
        shard_index=args.shard_index,
        num_shards=args.num_shards,
        episodes_per_shard=args.episodes_per_shard,
        overwrite=args.overwrite,
        progress=not args.quiet,
        world=args.map,
        model=args.model,
    )
    print(f"wrote {manifest}")


def cmd_verify(args: argparse.Namespace) -> None:
    from maag.data import Dataset

    dataset = Dataset(args.path, game=args.game)
    dataset.verify()
    m = dataset.manifest
    frames = dataset.num_episodes * (dataset.steps + 1)
    print(
        f"{dataset.path}: {m['game']} data, agent {m['agent']}, {dataset.num_episodes} episodes "
        f"x {dataset.steps} steps ({frames} frames) in {len(dataset.shards)} shards, all verified"
    )


def cmd_play(args: argparse.Namespace) -> None:
    from maag.games import get_game, make_agent
    from maag.play.recorder import Recorder

    if args.compare and args.engine:
        raise MaagError("--compare shows the engine beside a model; drop --engine")
    if args.compare and args.headless:
        raise MaagError("--compare is for the window; drop --headless")
    if args.compare and args.load:
        raise MaagError(
            "--compare starts the model and the engine from the same reset; drop --load"
        )
    if args.engine and (args.no_numerical or args.no_spatial):
        raise MaagError("--no-numerical/--no-spatial switch a model's modules; drop --engine")
    if args.lockstep and args.headless:
        raise MaagError("--lockstep is for the window (headless play always waits); drop it")
    definition = get_game(args.game)
    if args.map and (args.engine or args.compare) and definition.engine_in_map is None:
        raise MaagError(f"the {args.game} engine plays its own world only; drop --map")

    def engine(seed: int) -> Game:
        """The ground truth, in the user's world where --map gives one."""
        if args.map:
            return definition.engine_in_map(seed, args.map)
        return definition.engine(seed)

    if args.engine:
        game, source = engine(args.seed), "engine (ground truth)"
    else:
        from maag.generative import load, shipped_model

        folder = Path(args.model or shipped_model(args.game))
        game = load(
            folder, game=args.game, sampler_steps=args.sampler_steps, seed=args.seed,
            reveal_sampler_steps=args.reveal_sampler_steps,
        )  # fmt: skip
        for module, off in (("numerical", args.no_numerical), ("spatial", args.no_spatial)):
            if off and module in game.available:
                game.switch(module, False)  # still there: N / M switch it back on
        source = f"model {folder.resolve().name}"
    if (args.save or args.load) and args.engine:
        raise MaagError("--save and --load keep generative sessions; drop --engine")
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(args.record, fps=args.fps) if args.record else None

    if args.map and not args.engine:
        if definition.custom_map is None:
            raise MaagError(f"{args.game} has no custom maps")
        game.use_custom_map(definition.custom_map(args.map))

    def start():
        return game.load_session(args.load) if args.load else game.reset(args.seed)

    if args.headless:
        from maag.play.loop import run_headless

        agent = make_agent(args.game, args.agent or _default_agent(args.game), args.seed)
        summary = run_headless(game, agent, args.steps, start, recorder)
        events = ", ".join(f"{k} x{v}" for k, v in sorted(summary.event_counts.items()))
        values = summary.last.values
        print(f"{args.game}: {summary.steps} steps, values {values}, events: {events or 'none'}")
    else:
        if args.agent:
            raise MaagError("--agent drives --headless play; in a window, you play")
        from maag.play.window import run_window

        reference = engine(args.seed) if args.compare else None
        try:
            run_window(
                game, start, args.seed, args.fps, args.scale, f"maag {args.game}", source,
                recorder, reference=reference, lockstep=args.lockstep,
            )  # fmt: skip
        finally:
            if recorder and recorder.frames:
                recorder.close()
            if args.save:
                game.save_session(args.save)
        return
    if recorder:
        print(f"recorded {recorder.close()}")
    if args.save:
        game.save_session(args.save)
        print(f"saved the session to {args.save}")


def cmd_train(args: argparse.Namespace) -> None:
    from maag.train.generator import GeneratorRecipe, GeneratorTask
    from maag.train.logicnet import LogicNetRecipe, LogicNetTask
    from maag.train.loop import train

    recipe_type, task = {
        "generator": (GeneratorRecipe, GeneratorTask()),
        "logicnet": (LogicNetRecipe, LogicNetTask()),
    }[args.network]
    overrides = {
        name: getattr(args, name)
        for name in (
            "data", "val_data", "steps", "batch_size", "grad_accum", "lr", "mixed_precision",
            "checkpoint_every", "sample_every", "eval_every", "seed", "preset", "numerical",
            "spatial", "loader_workers",
        )
        if getattr(args, name, None) is not None
    }  # fmt: skip
    if args.resume:
        recipe = recipe_type.resumed(args.out, overrides)
    else:
        recipe = recipe_type.load(args.recipe) if args.recipe else recipe_type()
        recipe = recipe.updated(overrides)
    train(task, recipe, args.out, args.resume, not args.quiet, args.compile)


def cmd_export(args: argparse.Namespace) -> None:
    from maag.train.export import export_model, repack_model

    if args.model:
        settings = ("sampler_steps", "reveal_sampler_steps", "start_frames", "palette", "tiles")
        given = [
            f"--{n.replace('_', '-')}" for n in settings if getattr(args, n) not in (None, False)
        ]
        if given:
            raise MaagError(f"{', '.join(given)}: a model folder keeps its own (drop --model)")
        folder = repack_model(
            args.model, args.out, args.logicnet_run, args.observer_run, args.weights,
            not args.float32, args.observer_events, args.resamples,
        )  # fmt: skip
        print(f"wrote {folder}")
        return
    folder = export_model(
        args.run, args.out, args.start_frames or 8, args.weights, args.logicnet_run,
        not args.float32, args.sampler_steps, args.reveal_sampler_steps, args.palette,
        args.observer_run, args.observer_events, args.tiles, args.resamples or 0,
    )  # fmt: skip
    print(f"wrote {folder}")


def cmd_eval(args: argparse.Namespace) -> None:
    from maag.games import get_game
    from maag.generative import load
    from maag.metrics import reading_by_event, teacher_forced_psnr, teacher_forced_reading
    from maag.transitions import first_episodes, load_episodes

    game = load(args.model)
    episodes = load_episodes(args.data, game=game.spec.name)
    if args.episodes:
        episodes = first_episodes(episodes, args.episodes)
    if game.logicnet is not None:
        from maag.train.logicnet import held_out_scores

        total = episodes["actions"].size
        for event, s in held_out_scores(game.logicnet, episodes, count=total).items():
            print(
                f"LogicNet {event}: precision {s['precision']:.4f} recall {s['recall']:.4f} "
                f"F1 {s['f1']:.4f} ({total} held-out transitions)"
            )
    maps, definition = None, get_game(game.spec.name)
    if game.map_inputs:
        from maag.transitions import MapViews

        maps = MapViews(episodes, game.spec, definition.sprite_mask)
    for steps in args.sampler_steps:
        scores = teacher_forced_psnr(
            game.generator, episodes, steps, count=args.count, tokens=game.tokens, maps=maps
        )
        print(
            f"{args.model}: teacher-forced next-frame PSNR {scores['psnr']:.2f} dB at {steps} "
            f"sampler step(s); copy-last-frame {scores['copy_last_psnr']:.2f} dB "
            f"({args.count} transitions of {args.data})"
        )
        read = teacher_forced_reading(
            game.generator, episodes, definition.read_frame, steps, args.count, tokens=game.tokens,
            maps=maps, palette=game.palette,
        )  # fmt: skip
        fields = ", ".join(f"{name} {share:.4f}" for name, share in read["fields"].items())
        print(
            f"{args.model}: teacher-forced drawings read as the engine's frame at {steps} "
            f"sampler step(s): {read['all']:.4f} ({fields}); where an event fires "
            f"{read['event_all']:.4f} ({read['event_steps']} transitions)"
        )
        if args.event_count:
            by_event = reading_by_event(
                game.generator, episodes, definition.read_frame, game.spec.event_names, steps,
                args.event_count, game.tokens, maps, game.palette,
            )  # fmt: skip
            shares = ", ".join(f"{n} {s['all']:.4f} ({s['steps']})" for n, s in by_event.items())
            shares = shares or "no event fires in the data"
            print(
                f"{args.model}: teacher-forced drawings read as the engine's frame at {steps} "
                f"sampler step(s), per event (up to {args.event_count} steps where it fires): "
                f"{shares}"
            )
        if game.tokens is not None and game.tokens.event_names and len(episodes["alt_step"]):
            from maag.metrics import told_events_drawn

            told = told_events_drawn(
                game.generator, episodes, definition.read_frame, game.tokens, steps, maps=maps
            )
            print(
                f"{args.model}: told the events, drawn as told at {steps} sampler step(s): "
                f"{told['true']:.4f} told the true ones, {told['alternative']:.4f} told the "
                f"alternative ({told['count']} steps of {args.data} with an alternative "
                "outcome; the frame reader's reading equal to the engine's frame)"
            )
        if definition.sprite_mask is not None and not game.map_inputs:
            from maag.metrics import redrawn_after_loss

            redrawn = redrawn_after_loss(
                game.generator, episodes, definition.read_frame, definition.sprite_mask,
                game.tokens, steps, palette=game.palette,
            )  # fmt: skip
            if redrawn["count"]:  # some sprite moved in the view (not a fixed player)
                print(
                    f"{args.model}: drawn again after a lost frame at {steps} sampler "
                    f"step(s): {redrawn['lost']:.4f} with the sprites' new pixels dropped "
                    f"from the last frame, {redrawn['as_is']:.4f} with it as it is "
                    f"({redrawn['count']} transitions of {args.data} where a sprite moved; "
                    "the reading equal to the engine's frame)"
                )


def cmd_bench(args: argparse.Namespace) -> None:
    from maag.bench import markdown_table, run_bench

    results = run_bench(
        args.game, args.models, args.episodes, args.steps, args.seed, args.agent, args.out,
        args.command_line, not args.quiet, args.configs, args.map,
    )  # fmt: skip
    print(markdown_table(results))
    if args.out:
        print(f"\nwrote {args.out}/results.json, results.md, metrics_by_step.png, rollouts.gif")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="maag",
        description="maag: a generative game engine. A diffusion transformer is the game; "
        "a numerical and a spatial module keep it consistent.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    data = sub.add_parser(
        "data",
        help="generate trajectory shards from a ground-truth game",
        description="Play a ground-truth game with a scripted agent and write safetensors shards "
        "plus a manifest with per-shard checksums. Split across machines with "
        "--shard-index/--num-shards: each machine writes its own shards and manifest.",
    )
    data.add_argument("--game", required=True, help=f"one of: {', '.join(GAME_NAMES)}")
    data.add_argument(
        "--agent", help="scripted agent name (default: the game's first, e.g. wanderer)"
    )
    data.add_argument(
        "--episodes", type=_positive, required=True, help="episodes in the whole dataset"
    )
    data.add_argument("--steps", type=_positive, required=True, help="steps per episode")
    data.add_argument("--out", required=True, help="output folder")
    data.add_argument("--seed", type=_natural, default=0, help="base seed (default 0)")
    data.add_argument("--workers", type=_positive, default=1, help="processes on this machine")
    data.add_argument("--shard-index", type=_natural, default=0, help="this machine's index")
    data.add_argument("--num-shards", type=_positive, default=1, help="machines sharing the work")
    data.add_argument("--episodes-per-shard", type=_positive, help="default: about 64 MB per shard")
    data.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    data.add_argument(
        "--map",
        help="play in your world instead of the game's own (Pac-Man: a maze file in the text "
        "format of games/mazes/classic.txt)",
    )
    data.add_argument(
        "--model",
        help="play the episodes on this model folder instead of the engine: its drawn frames, "
        "with the values and events the game's referee reads in them (data for an observer)",
    )
    data.add_argument("--quiet", action="store_true", help="no progress bar")
    data.set_defaults(handler=cmd_data)

    verify = sub.add_parser(
        "verify",
        help="check a dataset's shards against its manifest",
        description="Check every shard's size, checksum and shapes, and that no episode "
        "is missing.",
    )
    verify.add_argument("path", help="dataset folder")
    verify.add_argument("--game", help="also require the data to be of this game")
    verify.set_defaults(handler=cmd_verify)

    play = sub.add_parser(
        "play",
        help="play a game in a window, or headless with a scripted agent",
        description="Play the generative model (or with --engine the ground-truth game) in a "
        "pygame window (arrows/WASD move, R reset, N/M numerical/spatial module on/off, +/- "
        "sampler steps, F12 record a GIF, H help, Esc/Q quit), or with --headless let a "
        "scripted agent play and optionally record a GIF.",
    )
    play.add_argument(
        "game", nargs="?", default="traveler", help=f"one of: {', '.join(GAME_NAMES)}"
    )
    play.add_argument("--engine", action="store_true", help="play the ground-truth engine")
    play.add_argument(
        "--compare", action="store_true", help="show the engine beside the model, same keys"
    )
    play.add_argument("--model", help="model folder (default: the shipped model of the game)")
    play.add_argument("--sampler-steps", type=_positive, help="generator steps per frame")
    play.add_argument(
        "--reveal-sampler-steps", type=_natural, help="steps where the map knows nothing (0: off)"
    )
    play.add_argument(
        "--no-numerical", action="store_true", help="start with the numerical module off (N: on)"
    )
    play.add_argument(
        "--no-spatial", action="store_true", help="start with the spatial module off (M: on)"
    )
    play.add_argument("--headless", action="store_true", help="no window: a scripted agent plays")
    play.add_argument("--steps", type=_positive, default=300, help="headless steps (default 300)")
    play.add_argument("--agent", help="headless agent (default: the game's first scripted agent)")
    play.add_argument("--seed", type=_natural, default=0, help="episode seed (default 0)")
    play.add_argument("--record", help="write the frames shown to a .gif (or .mp4) file")
    play.add_argument("--save", help="save the session (record, map, context) here at the end")
    play.add_argument("--load", help="continue a saved session instead of starting anew")
    play.add_argument(
        "--map",
        help="your world: pre-fills the spatial map (Traveler: .json, .png; Pac-Man: a maze "
        ".txt, which the engine also plays, with --engine or --compare)",
    )
    play.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    play.add_argument(
        "--lockstep", action="store_true", help="wait for every step (no dropped frames)"
    )
    play.add_argument("--scale", type=_positive, default=8, help="window pixels per game pixel")
    play.set_defaults(handler=cmd_play)
    train = sub.add_parser(
        "train",
        help="train a network (generator, logicnet)",
        description="Train on trajectory shards with accelerate. On one machine: "
        "maag train generator ...; on many processes/GPUs/machines: accelerate launch "
        "[--multi_gpu --num_processes N ...] -m maag train generator ...",
    )
    nets = train.add_subparsers(
        dest="network", required=True, metavar="NETWORK", parser_class=_Parser
    )
    gen = nets.add_parser(
        "generator",
        help="the next-frame DiT",
        description="Train the next-frame generator. Values come from --recipe "
        "(a name in train/recipes or a JSON path), then the flags given here.",
    )
    gen.add_argument("--preset", help="model size: XXS, XS, S, M, L")
    gen.add_argument(
        "--numerical", action="store_const", const=True, help="condition on digit tokens"
    )
    gen.add_argument(
        "--spatial", action="store_const", const=True, help="condition on the map view"
    )
    logic = nets.add_parser(
        "logicnet",
        help="LogicNet, the numerical module's event classifier",
        description="Train LogicNet (which events a step triggers) on the same shards and "
        "loop as the generator.",
    )
    for net in (gen, logic):
        net.add_argument("--recipe", help="recipe name or JSON file (e.g. traveler_baseline)")
        net.add_argument("--resume", action="store_true", help="continue the run in --out")
        net.add_argument("--out", required=True, help="run folder: checkpoints, metrics")
        net.add_argument(
            "--compile",
            action="store_true",
            help="torch.compile the network (a minute to start; measure the gain: 1.05x for the "
            "Pong generator on our 2-core CPU)",
        )
        net.add_argument("--data", help="training dataset folder")
        net.add_argument("--val-data", help="held-out dataset folder for evaluation")
        net.add_argument("--steps", type=_positive, help="total optimizer steps")
        net.add_argument("--batch-size", type=_positive, help="examples per process per step")
        net.add_argument("--grad-accum", type=_positive, help="micro-steps per optimizer step")
        net.add_argument("--lr", type=float, help="peak learning rate")
        net.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"))
        net.add_argument("--checkpoint-every", type=_positive, help="steps between checkpoints")
        net.add_argument("--sample-every", type=_natural, help="steps between sample GIFs")
        net.add_argument("--eval-every", type=_positive, help="steps between held-out checks")
        net.add_argument("--seed", type=_natural)
        net.add_argument(
            "--loader-workers",
            type=_natural,
            help="processes drawing batches ahead of each step (for a GPU; 0: none)",
        )
        net.add_argument("--quiet", action="store_true", help="no progress bar")
        net.set_defaults(handler=cmd_train)

    export = sub.add_parser(
        "export",
        help="turn a training run into a playable model folder",
        description="Write a model folder (generator weights, start frames, model.json) from "
        "a run's latest checkpoint.",
    )
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="generator training run folder")
    source.add_argument(
        "--model",
        help="model folder to take the generator, start frames and settings from, as they "
        "are: with --logicnet-run or --observer-run, to give it another one",
    )
    export.add_argument("--out", required=True, help="model folder to write (e.g. models/traveler)")
    export.add_argument("--start-frames", type=_positive, help="start frames to keep (default 8)")
    export.add_argument("--weights", choices=("ema", "model"), default="ema")
    export.add_argument(
        "--logicnet-run",
        help="LogicNet run, or a model folder whose LogicNet to take: adds the numerical module",
    )
    export.add_argument(
        "--observer-run",
        help="LogicNet run trained with observes (or a model folder whose observer to take): "
        "checks each drawn frame's events, and the record follows what was drawn",
    )
    export.add_argument(
        "--observer-events",
        type=lambda names: names.split(","),
        help="the events whose reading by the observer overrules LogicNet's, comma-separated "
        "(e.g. death,ghost_eaten; default: all)",
    )
    export.add_argument(
        "--resamples",
        type=_natural,
        help="where the observer reads otherwise than LogicNet decided, frames drawn anew with "
        "other noise, told the same events, before the record follows the frame (default 0)",
    )
    export.add_argument("--float32", action="store_true", help="store float32 (default float16)")
    export.add_argument("--sampler-steps", type=_positive, help="default steps per frame")
    export.add_argument(
        "--reveal-sampler-steps", type=_natural, help="default steps where the map knows nothing"
    )
    export.add_argument(
        "--palette",
        action="store_true",
        help="snap every drawn pixel to the colours of the training frames (pixel-art games)",
    )
    export.add_argument(
        "--tiles",
        action="store_true",
        help="with --palette, where the view is laid out on tiles (Pac-Man), snap each drawn "
        "tile to the nearest tile of the training frames",
    )
    export.set_defaults(handler=cmd_export)

    evaluate = sub.add_parser(
        "eval",
        help="teacher-forced next-frame PSNR of a model on held-out data",
        description="Next-frame PSNR of a model folder's generator on held-out data, with "
        "copy-last-frame beside it.",
    )
    evaluate.add_argument("--model", required=True, help="model folder")
    evaluate.add_argument("--data", required=True, help="held-out dataset folder")
    evaluate.add_argument("--count", type=_positive, default=2048, help="transitions to score")
    evaluate.add_argument("--sampler-steps", type=_positive, nargs="+", default=[1])
    evaluate.add_argument(
        "--event-count", type=_natural, default=256,
        help="per event, the most steps where it fires to score (0: none)",
    )  # fmt: skip
    evaluate.add_argument(
        "--episodes", type=_positive, help="score the data's first N episodes only"
    )
    evaluate.set_defaults(handler=cmd_eval)
    bench = sub.add_parser(
        "bench",
        help="consistency benchmark: NumCon, SpaCon, ActAcc, NPC acc, fidelity, drift, speed",
        description="Play the engine (control row) and each model with the game's evaluation "
        "agent on seeds disjoint from training, read every frame, and report the metrics "
        "side by side.",
    )
    bench.add_argument("--game", required=True, help=f"one of: {', '.join(GAME_NAMES)}")
    bench.add_argument("--models", nargs="*", default=[], help="model folders to compare")
    bench.add_argument("--episodes", type=_positive, default=16)
    bench.add_argument("--steps", type=_positive, default=1000, help="steps per episode")
    bench.add_argument("--seed", type=_natural, default=12345, help="evaluation seed")
    bench.add_argument("--agent", help="evaluation agent (default: the game's first)")
    bench.add_argument("--out", help="folder for results.json/.md, plots and GIF")
    bench.add_argument(
        "--configs", nargs="+", choices=("baseline", "+numerical", "+spatial", "full"),
        help="only these module settings of the model folders (default: every one)",
    )  # fmt: skip
    bench.add_argument(
        "--map",
        metavar="PATH",
        help="a world of the game's custom maps (Pac-Man: a maze file): the engine plays in "
        "it and each model with its spatial module on starts its map from it",
    )
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["maag", *argv])
    try:
        args.handler(args)
    except MaagError as exc:
        print(f"maag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"maag {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
