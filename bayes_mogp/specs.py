"""Model specifications: the TOML files of ``models/`` that the CLI and the notebooks run.

A spec is addressed by name (``"table1_d"`` -> ``models/table1_d.toml``) or by path.  The catalogue
folder is ``$BAYES_MOGP_MODELS`` if set, else the ``models/`` folder beside the package.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

__all__ = ["models_dir", "list_specs", "load_spec"]


def models_dir() -> Path:
    env = os.environ.get("BAYES_MOGP_MODELS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def list_specs(prefix: str = "") -> list[str]:
    """Names of the specs in the catalogue whose name starts with ``prefix``."""
    return sorted(p.stem for p in models_dir().glob(f"{prefix}*.toml"))


def load_spec(name_or_path: str | os.PathLike) -> dict:
    """Read a spec; raise ``ValueError`` naming the file if it is missing or not valid TOML."""
    path = Path(name_or_path)
    if path.suffix != ".toml" or not path.exists():
        candidate = models_dir() / f"{Path(name_or_path).stem}.toml"
        if path.suffix == ".toml" and not path.exists() and not candidate.exists():
            raise ValueError(f"model spec {path}: file not found")
        if not candidate.exists():
            known = ", ".join(list_specs()) or "none"
            raise ValueError(f"unknown model spec {str(name_or_path)!r}; known specs: {known}")
        path = candidate
    try:
        with open(path, "rb") as fh:
            spec = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"model spec {path}: not valid TOML ({exc})") from None
    spec.setdefault("name", path.stem)
    spec["_path"] = str(path)
    return spec
