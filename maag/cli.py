"""The `maag` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from maag.errors import MaagError

GAME_NAMES = ("traveler", "pong", "pacman")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _natural(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {number}")
    return number


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

    definition = get_game(args.game)
    if not args.engine:
        raise MaagError(
            f"no generative model is shipped for {args.game} yet: play the engine with --engine"
        )
    game = definition.engine(args.seed)
    recorder = Recorder(args.record, fps=args.fps) if args.record else None
    if args.headless:
        from maag.play.loop import run_headless

        agent = make_agent(args.game, args.agent or _default_agent(args.game), args.seed)
        summary = run_headless(game, agent, args.steps, args.seed, recorder)
        events = ", ".join(f"{k} x{v}" for k, v in sorted(summary.event_counts.items()))
        values = summary.last.values
        print(f"{args.game}: {summary.steps} steps, values {values}, events: {events or 'none'}")
    else:
        if args.agent:
            raise MaagError("--agent drives --headless play; in a window, you play")
        from maag.play.window import run_window

        try:
            run_window(
                game, args.seed, args.fps, args.scale, title=f"maag {args.game}", recorder=recorder
            )
        finally:
            if recorder and recorder.frames:
                recorder.close()
        return
    if recorder:
        print(f"recorded {recorder.close()}")


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
    data.add_argument("--quiet", action="store_true", help="no progress bar")
    data.set_defaults(run=cmd_data)

    verify = sub.add_parser(
        "verify",
        help="check a dataset's shards against its manifest",
        description="Check every shard's size, checksum and shapes, and that no episode "
        "is missing.",
    )
    verify.add_argument("path", help="dataset folder")
    verify.add_argument("--game", help="also require the data to be of this game")
    verify.set_defaults(run=cmd_verify)

    play = sub.add_parser(
        "play",
        help="play a game in a window, or headless with a scripted agent",
        description="Play in a pygame window (arrows/WASD, R reset, Esc/Q quit), or with "
        "--headless let a scripted agent play and optionally record a GIF.",
    )
    play.add_argument(
        "game", nargs="?", default="traveler", help=f"one of: {', '.join(GAME_NAMES)}"
    )
    play.add_argument("--engine", action="store_true", help="play the ground-truth engine")
    play.add_argument("--headless", action="store_true", help="no window: a scripted agent plays")
    play.add_argument("--steps", type=_positive, default=300, help="headless steps (default 300)")
    play.add_argument("--agent", help="headless agent (default: the game's first scripted agent)")
    play.add_argument("--seed", type=_natural, default=0, help="episode seed (default 0)")
    play.add_argument("--record", help="write the frames shown to a .gif (or .mp4) file")
    play.add_argument("--fps", type=float, default=12.0, help="steps per second in the window")
    play.add_argument("--scale", type=_positive, default=8, help="window pixels per game pixel")
    play.set_defaults(run=cmd_play)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except MaagError as exc:
        print(f"maag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"maag {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
