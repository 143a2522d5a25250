"""The farm's parts that need no cluster: names, addresses, the `ray start` argument list, artifact
packing, the store's URL handling, and the resume rule for lost cells."""

from __future__ import annotations

import hashlib
import json

import pytest

from effbench.errors import UsageError
from effbench.farm.artifacts import materialize, node_folder, pack
from effbench.farm.node import NodePlan, parse_address, parse_ip
from effbench.farm.resources import check_device_name, device_of, resource_name
from effbench.harness.failures import failed_result
from effbench.harness.store import Store, resolve_url
from effbench.harness.urls import redact as display_url


@pytest.mark.parametrize("name", ["raspberry-pi-5", "jetson.orin_1", "A100"])
def test_device_names_become_resources_and_back(name):
    assert device_of(resource_name(name)) == name
    assert device_of("CPU") is None


@pytest.mark.parametrize("name", ["", "-lead", "a b", "a;rm -rf /", "x" * 64, "$(id)", "../up"])
def test_a_device_name_that_is_not_a_plain_word_is_refused(name):
    with pytest.raises(UsageError, match="bad device name"):
        check_device_name(name)


def test_addresses():
    assert parse_address("10.0.0.5:6400") == ("10.0.0.5", 6400)
    assert parse_address("10.0.0.5") == ("10.0.0.5", 6379)
    assert parse_address("[::1]:7000") == ("::1", 7000)
    assert parse_address("localhost:6379")[0] in ("127.0.0.1", "::1")
    for bad in ("10.0.0.5:0", "10.0.0.5:port", "", "no-such-host.invalid:6379"):
        with pytest.raises(UsageError):
            parse_address(bad)
    with pytest.raises(UsageError, match="not an IP address"):
        parse_ip("head.lab", "--node-ip")


def test_ray_start_is_an_argument_list_bound_to_the_address_given():
    head = NodePlan(node_ip="10.0.0.5", devices=["gpu-server"], num_cpus=1, head_port=6379)
    args = head.argv()
    assert args[args.index("--node-ip-address") + 1] == "10.0.0.5"
    assert args[args.index("--dashboard-host") + 1] == "10.0.0.5"
    assert args[args.index("--include-dashboard") + 1] == "false"
    assert json.loads(args[args.index("--resources") + 1]) == {"effbench-device-gpu-server": 1}
    assert "--head" in args and "--block" in args and "--disable-usage-stats" in args
    node = NodePlan(node_ip="10.0.0.7", devices=["jetson-a", "jetson-b"], num_cpus=1, head_address="10.0.0.5:6379")
    args = node.argv()
    assert "--head" not in args and args[args.index("--address") + 1] == "10.0.0.5:6379"
    assert json.loads(args[args.index("--resources") + 1]) == {
        "effbench-device-jetson-a": 1,
        "effbench-device-jetson-b": 1,
    }
    assert node.env()["RAY_USAGE_STATS_ENABLED"] == "0"
    with pytest.raises(UsageError):
        NodePlan(node_ip="10.0.0.7", devices=["a b"], num_cpus=1, head_address="x:1").argv()


def test_packing_is_deterministic_and_a_node_cache_hit_needs_no_transfer(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path / "cache"))
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        (d / "model.onnx").write_bytes(b"onnx bytes")
        (d / "weights.bin").write_bytes(b"w" * 1000)
        (d / "meta.json").write_text(json.dumps({"made": name}))  # bookkeeping: not content
    assert pack(tmp_path / "a") == pack(tmp_path / "b")
    assert pack(tmp_path / "a" / "model.onnx") != pack(tmp_path / "a")  # one file alone
    data = pack(tmp_path / "a")
    digest = hashlib.sha256(data).hexdigest()
    folder = node_folder(digest)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx bytes")
    # the reference is never touched on a hit: an object that cannot be fetched proves it
    path, info = materialize({"sha256": digest, "main": "model.onnx", "bytes": len(data), "ref": [object()]})
    assert path == folder / "model.onnx" and info["fetched"] is False


def test_postgres_urls_use_psycopg3_and_passwords_are_masked():
    assert resolve_url("postgresql://bench@db.lab/effbench") == "postgresql+psycopg://bench@db.lab/effbench"
    assert resolve_url("postgres://bench@db.lab/effbench").startswith("postgresql+psycopg://")
    shown = display_url("postgresql+psycopg://bench:s3cret@db.lab:5432/effbench")
    assert "s3cret" not in shown and "bench:***@db.lab" in shown


def test_resume_runs_lost_cells_again(tmp_path):
    store = Store(str(tmp_path / "r.db"))
    store.add(
        failed_result(
            {"model": "m", "backend": "null"}, {"status": "lost", "error": "lost: node died"}, config_hash="lost1"
        )
    )
    store.add(
        failed_result(
            {"model": "m", "backend": "null"}, {"status": "crashed", "error": "worker died"}, config_hash="crash1"
        )
    )
    assert store.config_hashes(status=None) == {"crash1"}  # a crash is a result; a lost cell never ran
