"""Training checkpoints: safetensors + JSON only, written atomically, resumable exactly.

run/checkpoints/step-00000500/
  model.safetensors  ema.safetensors  optimizer.safetensors  optimizer.json
  rng-rank0.json ...  (each process's sampler and noise state)   state.json
run/checkpoints/latest   the name of the newest complete checkpoint
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from maag.errors import MaagError
from maag.io import write_atomic


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj)))


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp)))


def optimizer_to_files(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    state = optimizer.state_dict()
    tensors = {
        f"{pid}.{key}": value for pid, s in state["state"].items() for key, value in s.items()
    }
    _save_tensors(folder / "optimizer.safetensors", tensors)
    _write_json(folder / "optimizer.json", {"param_groups": state["param_groups"]})


def optimizer_from_files(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    groups = json.loads((folder / "optimizer.json").read_text())["param_groups"]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


class CheckpointStore:
    """The checkpoints folder of a run; every process calls save() (for its own RNG state)."""

    def __init__(self, run_dir: str | Path, keep: int = 2):
        self.folder = Path(run_dir) / "checkpoints"
        self.keep = keep

    def latest(self) -> Path | None:
        pointer = self.folder / "latest"
        if not pointer.exists():
            return None
        path = self.folder / pointer.read_text().strip()
        if not (path / "state.json").exists():
            raise MaagError(f"checkpoint {path} named by {pointer} is missing or incomplete")
        return path

    def save(
        self,
        accelerator: Any,
        step: int,
        model: torch.nn.Module,
        ema: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        rng_state: dict[str, Any],
    ) -> Path:
        name = f"step-{step:08d}"
        tmp = self.folder / f".{name}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        _write_json(tmp / f"rng-rank{accelerator.process_index}.json", rng_state)
        accelerator.wait_for_everyone()
        final = self.folder / name
        if accelerator.is_main_process:
            _save_tensors(tmp / "model.safetensors", accelerator.unwrap_model(model).state_dict())
            _save_tensors(tmp / "ema.safetensors", ema.state_dict())
            optimizer_to_files(optimizer, tmp)
            _write_json(tmp / "state.json", {"step": step, "world_size": accelerator.num_processes})
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            write_atomic(self.folder / "latest", lambda p: p.write_text(name))
            for old in sorted(self.folder.glob("step-*"))[: -self.keep]:
                shutil.rmtree(old)
        accelerator.wait_for_everyone()
        return final

    def load(
        self,
        path: Path,
        accelerator: Any,
        model: torch.nn.Module,
        ema: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
    ) -> tuple[int, dict[str, Any]]:
        """Restore everything from `path`; returns (step, this process's RNG state)."""
        try:
            state = json.loads((path / "state.json").read_text())
        except (OSError, ValueError) as exc:
            raise MaagError(f"checkpoint {path} cannot be resumed: {exc}") from None
        if state.get("world_size") != accelerator.num_processes:
            raise MaagError(
                f"checkpoint {path} was written by {state.get('world_size')} processes; "
                f"resume it with the same number (now {accelerator.num_processes})"
            )
        try:
            accelerator.unwrap_model(model).load_state_dict(
                load_file(str(path / "model.safetensors"))
            )
            ema.load_state_dict(load_file(str(path / "ema.safetensors")))
            optimizer_from_files(optimizer, path)
            rng = json.loads((path / f"rng-rank{accelerator.process_index}.json").read_text())
        except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MaagError(f"checkpoint {path} cannot be resumed: {message}") from None
        return state["step"], rng
