"""`whisper-ort compare --engine ray`: each comparison (one SUT, one core count) as a Ray
task pinned to a node, so a sweep over SUTs and core counts is one command on a cluster.

A task runs compare() as it runs here, its implementations' workers as subprocesses of the
task, interleaved round by round on that node: ratios only mean something between workers
on one machine, so the node, not the implementation, is the unit Ray places. The task
reserves all of its node's CPUs (nothing else of this run beside it while it measures)
and is not retried (a measurement is not silently redone); its output folder comes back
to the driver, which writes it where the local run would. On one machine: the local node,
one comparison after another. Limits (--cpuset, --memory-gb) apply on the task's node.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from whisper_ort.measure.compare import Plan, compare
from whisper_ort.measure.ray_engine import connect
from whisper_ort.measure.records import write_atomic, write_json


def _compare_here(plan: Plan) -> tuple[dict, dict[str, str], dict]:
    """In the task: the comparison into a temporary folder; (summary, its files, the node)."""
    import ray

    with tempfile.TemporaryDirectory(prefix="whisper-ort-compare-") as tmp:
        summary = compare(replace(plan, out_dir=Path(tmp), progress=False))
        files = {str(p.relative_to(tmp)): p.read_text(encoding="utf-8", errors="replace") for p in Path(tmp).rglob("*") if p.is_file()}
    ctx = ray.get_runtime_context()
    return summary, files, {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address()}


def compare_on_ray(plans: list[Plan], address: str | None = None, num_cpus: int | None = None, log=None) -> list[dict]:
    """Every plan on a node of the cluster (round robin over the nodes, in parallel across
    them); each plan's files written to its out_dir; the summaries in the plans' order."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    started = connect(address, num_cpus)
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = sorted((n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU")), key=lambda n: n["NodeID"])
        if not nodes:
            raise RuntimeError("the Ray cluster has no node with CPUs")
        task = ray.remote(_compare_here)
        refs = []
        for i, plan in enumerate(plans):
            node = nodes[i % len(nodes)]
            where = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            log(f"compare {plan.label or plan.out_dir}: on node {node['NodeManagerAddress']} ({node['Resources']['CPU']:g} CPUs)")
            refs.append(task.options(num_cpus=node["Resources"]["CPU"], max_retries=0, scheduling_strategy=where).remote(plan))
        summaries = []
        for plan, ref in zip(plans, refs):
            summary, files, node = ray.get(ref)
            summary["engine"] = {"name": "ray", "address": address or "local", **node}
            for rel, text in files.items():
                write_atomic(plan.out_dir / rel, text)
            write_json(plan.out_dir / "summary.json", summary)
            summaries.append(summary)
        return summaries
    finally:
        if started:
            import ray

            ray.shutdown()
