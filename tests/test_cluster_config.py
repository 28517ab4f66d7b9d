"""``cluster.yaml`` passes Ray's own autoscaler validation, offline: the JSON schema
(``validate_config``) and the merge with the AWS defaults ``ray up`` does (``prepare_config``).
No node is started and no cloud API is called.  Broken copies must fail the same checks, so a
validation that accepts anything would fail here too."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def validated(config: dict[str, Any]) -> dict[str, Any]:
    """What ``ray up`` checks before it talks to the cloud: schema, defaults merge, schema again."""
    validate_config(config)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_rays_validation(raw):
    config = validated(raw)
    assert config["provider"]["type"] == "aws" and config["provider"]["region"]
    nodes = config["available_node_types"]
    assert config["head_node_type"] in nodes
    workers = [n for name, n in nodes.items() if name != config["head_node_type"]]
    assert workers and all(0 <= w["min_workers"] <= w["max_workers"] <= config["max_workers"] for w in workers)


def test_nodes_install_this_checkout_with_the_constraints(raw):
    mounts = {str(k): str(v) for k, v in raw["file_mounts"].items()}
    assert mounts.get("~/raynas") == ".", "the repository (ray up runs in its root) must be mounted at ~/raynas"
    assert "cd ~/raynas" in " ".join(raw["setup_commands"])
    assert any(re.search(r"pip install .*-c constraints\.txt -e \.", c) for c in raw["setup_commands"])
    # the cluster runs the Ray and torch this checkout is tested with
    text = (REPO / "cluster.yaml").read_text()
    assert f"ray[default,tune]=={ray.__version__}" in text
    torch_pin = re.search(r"^torch==(\S+)", (REPO / "constraints.txt").read_text(), re.M).group(1)
    assert f"torch=={torch_pin}" in text


def test_gpu_workers_start_on_demand_with_the_cuda_build_of_torch(raw):
    nodes = raw["available_node_types"]
    gpu = nodes["ray.worker.gpu"]
    assert gpu["node_config"]["InstanceType"].startswith(("g4dn.", "g5.", "g6.", "p3.", "p4d.", "p5."))
    assert gpu["min_workers"] == 0  # no GPU bill until a trial asks for one
    assert nodes["ray.worker.cpu"]["min_workers"] >= 1
    install = next(c for c in raw["setup_commands"] if "torch==" in c)
    assert "nvidia-smi" in install and "wheels=cu" in install and "wheels=cpu" in install and "whl/$wheels" in install


def test_token_authentication_stays_on_and_no_secret_is_in_the_file(raw):
    text = (REPO / "cluster.yaml").read_text()
    assert "RAY_AUTH_MODE=disabled" not in text
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert all("RAY_AUTH_MODE=token" in c for c in raw[key] if "ray start" in c), key
    assert raw["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"  # a path to the user's token, not a token
    for pattern in (r"AKIA[0-9A-Z]{16}", r"(?i)secret_access_key", r"RAY_AUTH_TOKEN\s*=", r"(?i)password", r"BEGIN [A-Z ]*PRIVATE KEY"):
        assert not re.search(pattern, text), pattern
    assert "ssh_private_key" not in raw["auth"]


def _broken(raw: dict[str, Any], edit: str) -> dict[str, Any]:
    config = copy.deepcopy(raw)
    workers = config["available_node_types"]["ray.worker.cpu"]
    if edit == "unknown key":
        config["max_worker"] = 3
    elif edit == "wrong type":
        config["max_workers"] = "four"
    elif edit == "min above the cluster max":
        workers["min_workers"] = config["max_workers"] + 1
    elif edit == "missing head type":
        config["head_node_type"] = "ray.head.gpu"
    elif edit == "unknown provider":
        config["provider"]["type"] = "nimbus"
    elif edit == "node type without node_config":
        del workers["node_config"]
    return config


@pytest.mark.parametrize(
    "edit",
    ["unknown key", "wrong type", "min above the cluster max", "missing head type", "unknown provider", "node type without node_config"],
)
def test_a_broken_copy_fails_validation(raw, edit):
    validated(raw)  # the original passes, so the failure below is the edit's
    with pytest.raises((jsonschema.ValidationError, ValueError, NotImplementedError)):
        validated(_broken(raw, edit))
