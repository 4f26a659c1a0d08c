"""The user's own cluster settings: ``cluster.toml`` in the config folder.

The file holds a ``[cluster]`` table of the same keys as a workflow's; the
workflow's own ``[cluster]`` wins key by key (``ClusterSettings.merged_over``).
Errors are ``WorkflowError`` at ``path:line:col``, as a workflow's are.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ErrorCollector, Location, WorkflowError
from ..paths import config_dir
from ..workflow import ClusterSettings
from .spec import check_keys, read_cluster
from .tomlpos import parse_toml


def user_cluster_file() -> Path:
    return config_dir() / "cluster.toml"


def load_cluster_config(path: Path | None = None) -> ClusterSettings:
    """``[cluster]`` of ``path`` (default: the user's ``cluster.toml``); none when absent."""
    path = Path(path) if path is not None else user_cluster_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ClusterSettings()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"cannot read it: {exc}", Location(str(path), 1, 1)) from None
    data, src = parse_toml(str(path), text)
    errors = ErrorCollector()
    with errors.going_on():
        check_keys(src, data, (), ("cluster",))
    settings = ClusterSettings()
    if "cluster" in data:
        with errors.going_on():
            settings = read_cluster(src, data["cluster"], ("cluster",), errors.going_on)
    errors.raise_any()
    return settings


def cluster_settings(workflow) -> ClusterSettings:
    """A cluster for a run of ``workflow``: its ``[cluster]`` over the user's
    ``cluster.toml``, key by key (``run --cluster`` and the app's Run on ask this)."""
    return workflow.cluster.merged_over(load_cluster_config())
