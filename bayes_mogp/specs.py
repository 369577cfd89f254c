"""Model specifications: the TOML files of ``models/`` that the CLI and the notebooks run.

A spec is addressed by name (``"table1_d"``) or by path (``"my_runs/bnn.toml"``).  A name is looked up in
the user-facing catalogue -- ``$BAYES_MOGP_MODELS`` if set, else the ``models/`` folder of a source
checkout -- and then in the catalogue shipped with the package.  The shipped catalogue is the same
``models/`` folder: the wheel carries it as ``bayes_mogp/models`` (``pyproject.toml``, hatch
``force-include``), so each spec exists once in the repository.  :func:`builtin_spec` reads the shipped copy
only (the library's own specs, e.g. the rows of Table 1, whatever ``$BAYES_MOGP_MODELS`` says).

Every problem with a spec file raises ``ValueError`` with one line naming the file and what is wrong: not
found, a directory, unreadable, not UTF-8 text, not valid TOML, or a table or key of the wrong type.
Tables named in :data:`TABLES` must be TOML tables wherever they appear; a ``schema`` (see
:func:`check_spec`) checks the keys of one kind of spec.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from .errors import InputError

__all__ = ["TABLES", "models_dir", "packaged_models_dir", "list_specs", "load_spec", "builtin_spec", "check_spec"]

#: tables that must be TOML tables (``[model]``), never a value (``model = "x"``), in every spec
TABLES = ("model", "data", "inference", "hyper", "prior_hyper")

_CHECKOUT_MODELS = Path(__file__).resolve().parent.parent / "models"
_PACKAGED_MODELS = Path(__file__).resolve().parent / "models"


def packaged_models_dir() -> Path:
    """The catalogue shipped with the package: ``bayes_mogp/models`` in a wheel, ``models/`` in a checkout."""
    return _PACKAGED_MODELS if _PACKAGED_MODELS.is_dir() else _CHECKOUT_MODELS


def models_dir() -> Path:
    """The user-facing catalogue: ``$BAYES_MOGP_MODELS`` if set, else :func:`packaged_models_dir`."""
    env = os.environ.get("BAYES_MOGP_MODELS")
    return Path(env) if env else packaged_models_dir()


def _catalogues() -> list[Path]:
    dirs = [models_dir(), packaged_models_dir()]
    return [d for i, d in enumerate(dirs) if d not in dirs[:i]]


def list_specs(prefix: str = "") -> list[str]:
    """Names of the specs (user catalogue and shipped catalogue) whose name starts with ``prefix``."""
    return sorted({p.stem for d in _catalogues() if d.is_dir() for p in d.glob(f"{prefix}*.toml")})


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "an array",
             dict: "a table"}
    if set(types) >= {int, float}:
        types = tuple(t for t in types if t is not int)
    return " or ".join(names.get(t, t.__name__) for t in types if t is not type(None))


def _is_instance(value, types) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in types
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, tuple(t for t in types if t is not bool))


def _show(value) -> str:
    text = repr(value)
    return (text if len(text) <= 40 else text[:37] + "...") + f" ({type(value).__name__})"


def check_spec(spec: dict, schema: dict, path="spec", _where: str = "") -> dict:
    """Check ``spec`` against ``schema``; raise ``ValueError`` naming ``path`` and the first key that is wrong.

    ``schema`` maps a key to its type (or tuple of types; include ``type(None)`` for an optional key) or to a
    nested schema (a required table); the key ``"*"`` gives the type of any other key of that table (without
    it, other keys are refused).  Integers are accepted where a float is expected; booleans never pass for
    numbers.
    """
    for key, expected in schema.items():
        if key == "*":
            continue
        name = f"{_where}{key}"
        if key not in spec:
            optional = isinstance(expected, tuple) and type(None) in expected
            if not optional:
                kind = "table [" + name + "]" if isinstance(expected, dict) else "key " + name
                raise InputError(f"model spec {path}: missing {kind}")
            continue
        value = spec[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise InputError(f"model spec {path}: [{name}] must be a table, got {_show(value)}")
            check_spec(value, expected, path, name + ".")
        elif not _is_instance(value, expected):
            raise InputError(f"model spec {path}: key {name} must be {_type_name(expected)}, got {_show(value)}")
    extra = sorted(k for k in spec if k not in schema and not k.startswith("_"))
    if extra and "*" not in schema:
        allowed = ", ".join(k for k in schema if k != "*")
        raise InputError(f"model spec {path}: unknown key(s) {', '.join(_where + k for k in extra)}; "
                         f"allowed: {allowed}")
    if "*" in schema:
        for k in extra:
            if not _is_instance(spec[k], schema["*"]):
                raise InputError(f"model spec {path}: key {_where}{k} must be {_type_name(schema['*'])}, "
                                 f"got {_show(spec[k])}")
    return spec


def _resolve(name_or_path, dirs) -> Path:
    """A bare name (no folder, no ``.toml``) is a catalogue name; anything else a path, where a bare
    ``name.toml`` that does not exist here falls back to the catalogue."""
    text = os.fspath(name_or_path)
    path = Path(text)
    has_sep = os.sep in text or bool(os.altsep and os.altsep in text)
    by_name = None
    if not has_sep and text:
        stem = path.stem if path.suffix == ".toml" else path.name
        by_name = next((d / f"{stem}.toml" for d in dirs if (d / f"{stem}.toml").is_file()), None)
    if by_name is not None and (path.suffix != ".toml" or not path.exists()):
        return by_name
    if path.exists() or has_sep or path.suffix == ".toml":
        return path
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.toml")})
    raise InputError(f"unknown model spec {text!r}: no such file, and no such name in "
                     f"{' or '.join(map(str, dirs))}; known specs: {', '.join(known) or 'none'}")


def _read(path: Path) -> dict:
    if path.is_dir():
        raise InputError(f"model spec {path}: is a directory, not a TOML file")
    if not path.exists():
        raise InputError(f"model spec {path}: file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"model spec {path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"model spec {path}: not valid TOML (not UTF-8 text: byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"model spec {path}: not valid TOML ({str(exc).splitlines()[0]})") from None


def _load(path: Path, schema) -> dict:
    spec = _read(path)
    for table in TABLES:
        if table in spec and not isinstance(spec[table], dict):
            raise InputError(f"model spec {path}: [{table}] must be a table, got {_show(spec[table])}")
    if "name" in spec and not isinstance(spec["name"], str):
        raise InputError(f"model spec {path}: key name must be a string, got {_show(spec['name'])}")
    if schema is not None:
        check_spec(spec, schema, path)
    spec.setdefault("name", path.stem)
    spec["_path"] = str(path)
    return spec


def load_spec(name_or_path: str | os.PathLike, *, schema: dict | None = None) -> dict:
    """Read a spec by name or path (module docstring); ``ValueError`` naming the file if anything is wrong.

    The result has the file's tables and keys, plus ``name`` (default: the file's stem) and ``_path``.
    ``schema`` (optional) is checked with :func:`check_spec`.
    """
    return _load(_resolve(name_or_path, _catalogues()), schema)


def builtin_spec(name: str, *, schema: dict | None = None) -> dict:
    """A spec of the shipped catalogue, by name (``"table1_d"``), ignoring ``$BAYES_MOGP_MODELS``."""
    path = packaged_models_dir() / f"{name}.toml"
    if not path.is_file():
        raise InputError(f"model spec {path}: file not found (the package's own catalogue is incomplete; "
                         "reinstall bayes-mogp)")
    return _load(path, schema)
