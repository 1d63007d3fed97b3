"""Datasets as older versions of maag wrote them, for the tests of reading them."""

import hashlib
import json
from pathlib import Path

from safetensors.numpy import save_file

from maag.data import Dataset


def drop_arrays(folder: Path, dropped) -> None:
    """Rewrite every shard of the dataset in `folder` without the arrays `dropped` names
    (a predicate on the array's name), checksums in the manifest updated."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for index, record in enumerate(manifest["shards"]):
        arrays = Dataset(folder).load_shard(index)
        save_file({k: v for k, v in arrays.items() if not dropped(k)}, str(folder / record["file"]))
        data = (folder / record["file"]).read_bytes()
        record |= {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest))
