"""The sweep's pure parts: selection, chunks, tiers, manifests, the ledger-driven plan."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.errors import SluiceInputError
from sluice.jobs import Outcome
from sluice.ledger.base import Attempt
from sluice.quantity import parse_duration, parse_memory
from sluice.sweep.chunks import make_chunks
from sluice.sweep.manifest import index_job_manifest
from sluice.sweep.plan import Action, TierPolicy, plan_index
from sluice.sweep.selection import select_indexes
from sluice.sweep.template import validate_template
from sluice.tiers import TierSchedule

TEMPLATE = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {
        "name": "wetlands",
        "uid": "abc",
        "resourceVersion": "7",
        "labels": {"app": "w", "controller-uid": "abc", "batch.kubernetes.io/job-name": "x"},
    },
    "spec": {
        "completionMode": "Indexed",
        "completions": 18587,
        "parallelism": 50,
        "selector": {"matchLabels": {"controller-uid": "abc"}},
        "template": {
            "metadata": {"labels": {"job-name": "wetlands", "app": "w"}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "img",
                        "command": ["python", "nwi.py"],
                        "env": [
                            {"name": "INDEX", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
                            {"name": "KEEP", "value": "1"},
                        ],
                        "resources": {"requests": {"memory": "60Gi", "cpu": "2"}},
                    }
                ]
            },
        },
    },
    "status": {"active": 3},
}


def test_selection_precedence_and_limit():
    assert select_indexes(indexes=[5, 3, 5], index_file="ignored", count=10) == [3, 5]
    assert list(select_indexes(start=10, count=5, limit=2)) == [10, 11]
    assert len(select_indexes()) == 18587
    assert list(select_indexes(count=99_999_999_999, limit=3)) == [0, 1, 2]
    assert len(select_indexes(count=0)) == 0
    with pytest.raises(SluiceInputError, match="--count: 99999999999 indexes; at most 1,000,000"):
        select_indexes(count=99_999_999_999)


def test_index_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "idx.txt"
    bad.write_text("1\n2\nx7\n")
    with pytest.raises(SluiceInputError, match=r"idx.txt: line 3: 'x7'"):
        select_indexes(index_file=str(bad))
    bad.write_text("1\n-4\n")
    with pytest.raises(SluiceInputError, match="line 2"):
        select_indexes(index_file=str(bad))
    with pytest.raises(SluiceInputError, match="cannot read"):
        select_indexes(index_file=str(tmp_path / "missing.txt"))


def test_chunk_labels_follow_the_seed_template():
    chunks = make_chunks(
        list(range(10)),
        chunk_size=4,
        batch_label=None,
        label_template="tier{tier}-chunk-{start:05d}",
        tiers=(0, 4),
    )
    assert [c.label_at(0) for c in chunks] == [
        "tier0-chunk-00000",
        "tier0-chunk-00004",
        "tier0-chunk-00008",
    ]
    assert chunks[1].label_at(2) == "tier2-chunk-00004"
    whole = make_chunks([1, 2], chunk_size=0, batch_label=None, label_template="x")
    assert len(whole) == 1 and whole[0].label_at(3) is None
    untiered = make_chunks(
        [3], chunk_size=1, batch_label=None, label_template="tier{tier}-{chunk}-{end}"
    )
    assert untiered[0].label_at(None) == "tierna-0-3"
    with pytest.raises(SluiceInputError, match=r"unknown placeholder \{'shard'\}"):
        make_chunks([1], chunk_size=1, batch_label=None, label_template="{shard}")


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{chunk:>999999999}", "a format width over 63"),
        ("{chunk:>{start}}", "nested fields"),
        ("x" * 300, "at most 253 characters"),
        ("{tier:05d}", "Unknown format code 'd'"),
        ("{start:>60}-{end:>60}", "not a valid Kubernetes label value"),
    ],
)
def test_label_templates_are_bounded_before_they_are_built(template, named):
    with pytest.raises(SluiceInputError, match=re.escape(named)) as refused:
        make_chunks([1], chunk_size=1, batch_label=None, label_template=template)
    assert len(str(refused.value)) < 200


def test_tier_schedule_and_quantities():
    schedule = TierSchedule(start_gi=10, factor=2, max_tier=24)
    assert [schedule.memory_quantity(t) for t in range(3)] == ["10Gi", "20Gi", "40Gi"]
    assert schedule.memory_quantity(20) == "10485760Gi"  # the seed's int formatting, not %g
    assert TierSchedule(start_gi=8, factor=1.5).memory_quantity(1) == "12Gi"
    assert TierSchedule(start_gi=0.05).memory_quantity(0) == "0.05Gi"
    with pytest.raises(SluiceInputError, match="--max-tier 1 is below --tier 2"):
        TierSchedule(max_tier=1).check_tier(2)
    assert parse_memory("512Mi") == 512 * 2**20
    assert parse_duration("1h30m") == 5400
    for bad in ("10GB", "lots", "-1Gi"):
        with pytest.raises(SluiceInputError, match="--memory"):
            parse_memory(bad, what="--memory")


def test_manifest_matches_the_seed():
    template = validate_template(TEMPLATE, source="test")
    job = index_job_manifest(
        template,
        name="wetlands-index-7",
        namespace="biodiversity",
        index=7,
        batch_label="tier1-chunk-00000",
        memory="20Gi",
        cpu="1",
        backoff_limit=0,
        ttl=3600,
        timestamp="T",
    )
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == "wetlands-index-7" and "uid" not in meta and "status" not in job
    assert meta["labels"] == {
        "app": "w",
        "wetlands/index": "7",
        "wetlands/batch": "tier1-chunk-00000",
    }
    assert meta["annotations"] == {"wetlands/index": "7", "wetlands/orchestrator-timestamp": "T"}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "w",
        "wetlands/index": "7",
        "wetlands/batch": "tier1-chunk-00000",
    }
    assert list(spec) == [
        "parallelism",
        "completions",
        "backoffLimit",
        "template",
        "ttlSecondsAfterFinished",
    ]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 0)
    assert spec["ttlSecondsAfterFinished"] == 3600
    container = spec["template"]["spec"]["containers"][0]
    # INDEX replaced where it stands, its valueFrom gone (the seed's set_index_env)
    assert container["env"] == [{"name": "INDEX", "value": "7"}, {"name": "KEEP", "value": "1"}]
    assert container["resources"] == {
        "requests": {"memory": "20Gi", "cpu": "1"},
        "limits": {"memory": "20Gi", "cpu": "1"},
    }
    no_ttl = index_job_manifest(
        template,
        name="n",
        namespace="ns",
        index=1,
        batch_label=None,
        memory=None,
        cpu=None,
        backoff_limit=2,
        ttl=-1,
        timestamp="T",
    )
    assert "ttlSecondsAfterFinished" not in no_ttl["spec"]
    assert "wetlands/batch" not in no_ttl["metadata"]["labels"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"kind": "Pod"}, "not a Kubernetes Job"),
        ({"kind": "Job", "spec": {"template": {"spec": {"containers": []}}}}, "no containers"),
        (
            {"kind": "Job", "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}},
            "no command",
        ),
    ],
)
def test_bad_templates(document, message):
    with pytest.raises(SluiceInputError, match=message):
        validate_template(document, source="--template-path t.yaml")


def _attempt(id_: int, tier: int | None, outcome: Outcome | None, name: str = "p-1") -> Attempt:
    now = datetime.now(UTC)
    return Attempt(
        id=id_,
        run="r",
        item="1",
        workload="w",
        job_name=name,
        tier=tier,
        memory_bytes=None,
        outcome=outcome,
        exit_code=None,
        reason=None,
        started_at=now,
        finished_at=None if outcome is None else now,
        peak_memory_bytes=None,
        message=None,
    )


POLICY = TierPolicy(start=0, max_tier=2, history={})


def _plan(attempts, *, flow_start_id=0, baseline_id=0, policy=POLICY, continued=()):
    return plan_index(
        1,
        attempts,
        prefix="p",
        policy=policy,
        baseline_id=baseline_id,
        flow_start_id=flow_start_id,
        continued=continued,
    )


def test_plan_escalates_oom_and_stops_at_max_tier():
    first = _plan([])
    assert (first.action, first.tier, first.job_name) == (Action.RUN, 0, "p-1")
    climb = _plan([_attempt(1, 0, Outcome.OOM)])
    assert (climb.action, climb.tier, climb.job_name) == (Action.RUN, 1, "p-1-a1")
    top = _plan(
        [_attempt(1, 0, Outcome.OOM), _attempt(2, 1, Outcome.OOM), _attempt(3, 2, Outcome.OOM)]
    )
    assert top.action is Action.DONE


def test_plan_other_failures_are_final_in_this_run_but_retried_on_rerun():
    failed = _attempt(5, 0, Outcome.FAILED)
    assert _plan([failed], flow_start_id=4).action is Action.DONE
    again = _plan([failed], flow_start_id=5)
    assert (again.action, again.tier) == (Action.RUN, 0)


def test_plan_a_reattached_attempt_that_failed_here_is_final():
    """An attempt from before a crash, re-attached and failed in this flow run, is not
    run again by the chunk's next (escalation) round."""
    failed = _attempt(3, 0, Outcome.FAILED)
    assert _plan([failed], flow_start_id=5).action is Action.RUN
    assert _plan([failed], flow_start_id=5, continued={3}).action is Action.DONE


def test_plan_adopts_running_and_skips_succeeded_unless_replaced():
    running = _plan([_attempt(1, 1, None, name="p-1-a3")])
    assert (running.action, running.job_name, running.tier) == (Action.ADOPT, "p-1-a3", 1)
    done = [_attempt(1, 0, Outcome.SUCCEEDED)]
    assert _plan(done).action is Action.DONE
    assert _plan(done, baseline_id=1).action is Action.RUN


def test_plan_auto_tier_starts_from_history():
    policy = TierPolicy(start=0, max_tier=3, history={"1": 2})
    assert _plan([], policy=policy).tier == 2


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["chunk", "start", "end", "tier"]),
    spec=st.text(alphabet="<>^=+- #0123456789,_.xXdbeEfFgGn%s{}", max_size=24),
    prefix=st.text(alphabet="abc-{}", max_size=6),
)
def test_any_label_template_is_refused_or_bounded(field, spec, prefix):
    """Fuzz: a --batch-label-template is refused with SluiceInputError or yields labels of
    at most 63 characters; nothing else escapes and nothing large is ever built."""
    template = f"{prefix}{{{field}:{spec}}}"
    try:
        chunks = make_chunks(
            [7, 99_999], chunk_size=1, batch_label=None, label_template=template, tiers=(0, 4)
        )
    except SluiceInputError as refused:
        assert len(str(refused)) < 300
        return
    assert all(len(c.label_at(t) or "") <= 63 for c in chunks for t in (0, 4))
