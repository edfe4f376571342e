"""Configuration: nameko YAML files with `${ENV:default}` values, read the same way everywhere.

`nameko run --config` resolves `${ENV:default}` itself; `load_config` does the same for code that
runs outside a container (the `fupin` command, tests, benchmarks).
"""
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from nameko.cli.main import setup_yaml_parser

REPO_ROOT = Path(__file__).resolve().parents[2]


def config_path(component: Any) -> Any:
    """`registry` -> services/registry/config.yaml; `gateway` -> gateway/config.yaml."""
    if component == "gateway":
        return REPO_ROOT / "gateway" / "config.yaml"
    return REPO_ROOT / "services" / component / "config.yaml"


def load_config(component: Any, env: Any = None) -> Any:
    """Load a component's YAML config, resolving `${ENV:default}` against `env` (or os.environ)."""
    setup_yaml_parser()
    saved = dict(os.environ)
    try:
        if env is not None:
            os.environ.update({k: str(v) for k, v in env.items()})
        with open(config_path(component), encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    finally:
        if env is not None:
            os.environ.clear()
            os.environ.update(saved)


def rules_from_config(config: Mapping[str, Any], rules_cls: Any) -> Any:
    """Build a domain `Rules` dataclass from the `RULES` mapping of a service config."""
    overrides = config.get("RULES") or {}
    known = {name for name in getattr(rules_cls, "__dataclass_fields__", {})}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown RULES keys for {rules_cls.__name__}: {sorted(unknown)}")
    return rules_cls(**overrides)
