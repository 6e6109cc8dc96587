"""NomadBackend against the Nomad double: real dispatches, real processes, real OOM kills."""

from __future__ import annotations

import json
import threading

import pytest

from sluice.backends.base import Backend
from sluice.backends.cgroups import CgroupParent, CgroupUnavailable
from sluice.backends.nomad import NomadApi, NomadBackend, NomadSettings
from sluice.backends.nomad.specs import SPEC_DIR, load_spec
from sluice.errors import BackendUnavailable, SluiceInputError
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobSpec, Outcome
from sluice.ledger import open_ledger

MIB = 2**20


def _cgroups_missing() -> str | None:
    try:
        CgroupParent.detect()
    except CgroupUnavailable as exc:
        return str(exc)
    return None


needs_cgroups = pytest.mark.skipif(
    _cgroups_missing() is not None, reason=f"no memory cgroup: {_cgroups_missing()}"
)


def job(name: str, code: str, **fields) -> JobSpec:
    return JobSpec(name=name, command=["python3", "-c", code], **fields)


def dispatched(nomad_api, prefix: str = "") -> list[str]:
    api = NomadApi(nomad_api.settings())
    return [j["ID"] for j in api.client.jobs.get_jobs(prefix=prefix) if j["ParentID"]]


@pytest.fixture
def backend(nomad_api):
    backend = NomadBackend(nomad_api.settings(), min_interval=0)
    yield backend
    backend.close()


def test_is_a_backend(backend):
    assert isinstance(backend, Backend)


def test_outcomes_exit_codes_and_logs(backend):
    names = backend.submit(
        [
            job("ok", "print('hello'); import sys; print('warn', file=sys.stderr)"),
            job("bad", "import sys; print('boom', file=sys.stderr); sys.exit(3)"),
        ]
    )
    results = {r.name: r for r in backend.wait(names, timeout=120)}
    assert results["ok"].outcome is Outcome.SUCCEEDED
    assert results["ok"].started_at <= results["ok"].finished_at
    assert results["bad"].outcome is Outcome.FAILED
    assert results["bad"].reason == "exit:3"
    assert backend.logs("ok") == "hello\nwarn\n"
    assert backend.logs("bad", streams=["stderr"]) == "boom\n"
    assert backend.logs("never-submitted") == ""


@needs_cgroups
def test_oom_is_classified_from_the_task_event(backend, nomad_api):
    spec = job("hog", "x = bytearray(200 * 2**20); print('survived')", memory_bytes=64 * MIB)
    [result] = backend.wait(backend.submit([spec]), timeout=120)
    assert result.outcome is Outcome.OOM
    assert result.exit_code == 137
    assert "OOM Killed" in result.message
    # Nomad cannot resize a dispatch: the backend registered a 64 MiB variant.
    assert dispatched(nomad_api, "sluice-job-64mib/")
    assert "survived" not in backend.logs("hog")


def test_lost_allocation_rescheduled_in_the_same_job_succeeds(backend, nomad_api):
    nomad_api.lose_next_allocation("sluice-job/dispatch-survivor-")
    [result] = backend.wait(backend.submit([job("survivor", "print('done')")]), timeout=120)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert "replaced by Nomad" in result.message
    api = NomadApi(nomad_api.settings())
    allocs = api.client.job.get_allocations(backend.job_id("survivor"))
    lost = next(a for a in allocs if a["ClientStatus"] == "lost")
    replacement = next(a for a in allocs if a["ClientStatus"] == "complete")
    assert lost["NextAllocation"] == replacement["ID"]
    assert replacement["PreviousAllocation"] == lost["ID"]
    assert backend.logs("survivor") == "done\n"


def test_lost_allocation_without_replacement_is_lost(backend, nomad_api):
    nomad_api.lose_next_allocation("sluice-job/dispatch-orphan-", replace=False)
    [result] = backend.wait(backend.submit([job("orphan", "print('done')")]), timeout=120)
    assert result.outcome is Outcome.LOST
    assert result.reason == "lost"


def test_dispatch_is_idempotent_by_name_across_backends(backend, nomad_api):
    spec = job("once", "print('x')")
    backend.submit([spec])
    backend.submit([spec])
    resumed = NomadBackend(nomad_api.settings(), min_interval=0)  # a restarted orchestrator
    resumed.submit([spec])
    assert len(dispatched(nomad_api)) == 1
    assert resumed.job_id("once") == backend.job_id("once")
    # A third orchestrator that never submitted finds the job by its ID prefix.
    finder = NomadBackend(nomad_api.settings(), min_interval=0)
    [result] = finder.wait(["once"], timeout=120)
    assert result.outcome is Outcome.SUCCEEDED
    assert nomad_api.requests["POST /v1/job/:id/dispatch"] == 3


def test_replace_purges_and_dispatches_again(backend, nomad_api):
    spec = job("again", "print('x')")
    first = backend.submit([spec]) and backend.job_id("again")
    list(backend.wait(["again"], timeout=120))
    bigger = job("again", "print('x')", memory_bytes=128 * MIB)  # another variant: same name
    backend.submit([bigger], replace=True)
    assert backend.job_id("again") != first
    assert dispatched(nomad_api) == [backend.job_id("again")]
    assert backend.job_id("again").startswith("sluice-job-128mib/dispatch-again-")


def test_faults_lose_no_job_and_dispatch_no_duplicate(nomad_api):
    backend = NomadBackend(nomad_api.settings(retry_attempts=12), min_interval=0)
    backend.preflight(["sluice-job"])
    nomad_api.set_faults(0.1, seed=7)
    specs = [job(f"flaky-{i}", f"print({i})") for i in range(30)]
    names = backend.submit(specs)
    results = {r.name: r for r in backend.wait(names, timeout=300)}
    nomad_api.set_faults(0)
    assert nomad_api.faults_injected >= 5
    assert {r.outcome for r in results.values()} == {Outcome.SUCCEEDED}
    assert sorted(results) == sorted(names)
    assert len(dispatched(nomad_api)) == 30
    backend.close()


def test_requests_per_job_stay_constant(backend, nomad_api):
    backend.preflight(["sluice-job"])
    nomad_api.requests.clear()
    count = 20
    names = backend.submit([job(f"n-{i}", "pass") for i in range(count)])
    assert len(list(backend.wait(names, timeout=300))) == count
    per_route = nomad_api.requests
    assert per_route["POST /v1/job/:id/dispatch"] == count
    assert per_route["GET /v1/job/:id/allocations"] == count  # one read per job, at its end
    assert per_route["GET /v1/job/:id"] == 0  # no per-job polling
    # The shared watch wakes at most once per job state change (created, running, dead).
    assert per_route["GET /v1/jobs"] <= 3 * count + 1


def test_active_count_by_name_prefix(backend, nomad_api):
    idle = "import time; time.sleep(600)"
    backend.submit([job("pipeline-a", idle), job("pipeline-b", idle), job("other", "pass")])
    list(backend.wait(["other"], timeout=120))
    assert backend.active_count("pipeline") == 2
    assert backend.active_count() == 2
    # A restarted orchestrator sees the same jobs before dispatching anything.
    assert NomadBackend(nomad_api.settings()).active_count("pipeline-a") == 1
    backend.delete(["pipeline-a"])
    assert backend.active_count("pipeline") == 1
    assert nomad_api.peak_active("sluice-job") == 3


def test_timeout_purges_the_job(backend, nomad_api):
    [result] = backend.wait(
        backend.submit([job("slow", "import time; time.sleep(600)")]), timeout=1
    )
    assert result.outcome is Outcome.TIMEOUT
    assert dispatched(nomad_api) == []


def test_job_timeout_seconds(backend, nomad_api):
    slow = job("slow", "import time; time.sleep(600)", timeout_seconds=1)
    names = backend.submit([slow, job("quick", "pass")])
    results = {r.name: r for r in backend.wait(names, timeout=300)}
    assert results["slow"].outcome is Outcome.TIMEOUT
    assert results["quick"].outcome is Outcome.SUCCEEDED
    assert dispatched(nomad_api) == [backend.job_id("quick")]


def test_backoff_limit_restarts_in_place(backend, nomad_api, tmp_path):
    marker = tmp_path / "tries"
    code = (
        f"import pathlib, sys; p = pathlib.Path({str(marker)!r}); "
        "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); "
        "sys.exit(0 if len(p.read_text()) == 3 else 1)"
    )
    [result] = backend.wait(backend.submit([job("retry", code, backoff_limit=2)]), timeout=120)
    assert result.outcome is Outcome.SUCCEEDED
    assert marker.read_text() == "xxx"
    assert backend.job_id("retry").startswith("sluice-job-r2/dispatch-retry-")


def test_delete_is_idempotent(backend, nomad_api):
    backend.submit([job("gone", "import time; time.sleep(600)")])
    backend.delete(["gone"])
    backend.delete(["gone", "never-existed"])
    assert dispatched(nomad_api) == []


def test_preflight_unreachable_nomad_is_one_clear_line(tmp_path):
    backend = NomadBackend(NomadSettings(address="http://127.0.0.1:9", retry_max_wait=0.05))
    with pytest.raises(BackendUnavailable) as error:
        backend.submit([job("x", "pass")])
    assert "http://127.0.0.1:9 is unreachable" in str(error.value)
    assert "\n" not in str(error.value)


def test_preflight_refused_token(nomad_api):
    backend = NomadBackend(nomad_api.settings(token="wrong"))
    with pytest.raises(BackendUnavailable, match="refused the ACL token"):
        backend.submit([job("x", "pass")])
    assert nomad_api.requests["POST /v1/job/:id/dispatch"] == 0


def test_unknown_parameterized_job_dispatches_nothing(backend, nomad_api):
    specs = [
        job("fine", "pass"),
        job("odd", "pass", template={"nomad": {"job": "no-such-job", "meta": {}}}),
    ]
    with pytest.raises(SluiceInputError, match="unknown parameterized Nomad job 'no-such-job'"):
        backend.submit(specs)
    assert nomad_api.requests["POST /v1/job/:id/dispatch"] == 0


def test_missing_required_meta_is_an_input_error(backend):
    spec = job("p", "pass", template={"nomad": {"job": "pipeline", "meta": {"aoi": "x"}}})
    with pytest.raises(SluiceInputError, match="required meta keys"):
        backend.submit([spec])


def test_template_job_gets_meta_and_secrets_from_a_variable(nomad_api, tmp_path):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    stage = load_spec("hand_inundator", SPEC_DIR)
    task = stage["TaskGroups"][0]["Tasks"][0]
    task["Config"] = {
        "command": "python3",
        "args": [
            "-c",
            "import os, sys; print(sys.argv[1], os.environ['AWS_SECRET_ACCESS_KEY'][:3])",
            "${NOMAD_META_output_path}",
        ],
    }
    (spec_dir / "hand_inundator.nomad.json").write_text(json.dumps({"Job": stage}))
    backend = NomadBackend(nomad_api.settings(), spec_dir=spec_dir, min_interval=0)
    backend.preflight(["hand_inundator"])
    secret = "s3cr3t-value-never-in-meta"
    backend.put_secrets({"AWS_SECRET_ACCESS_KEY": secret})  # for the preflighted kind
    meta = {"catchment_data_path": "c.parquet", "forecast_path": "f.csv", "output_path": "out.tif"}
    specs = [
        job("inundate-1", "unused", template={"nomad": {"job": "hand_inundator", "meta": meta}}),
        job(
            "inundate-2",
            "unused",
            memory_bytes=256 * MIB,
            template={"nomad": {"job": "hand_inundator", "meta": meta}},
        ),
    ]
    results = {r.name: r for r in backend.wait(backend.submit(specs), timeout=120)}
    assert {r.outcome for r in results.values()} == {Outcome.SUCCEEDED}, results
    assert backend.logs("inundate-1") == "out.tif s3c\n"
    assert backend.logs("inundate-2") == "out.tif s3c\n"  # the sized variant got the secret
    api = NomadApi(nomad_api.settings())
    for name in ("inundate-1", "inundate-2"):
        assert secret not in json.dumps(api.client.job.get_job(backend.job_id(name)))
    backend.close()


def test_generic_jobs_get_secrets_only_once_they_were_put(backend, nomad_api):
    show = "import os; print(os.environ.get('SLUICE_TEST_SECRET', 'none'))"
    [plain] = backend.wait(backend.submit([job("plain", show)]), timeout=120)
    assert plain.outcome is Outcome.SUCCEEDED and backend.logs("plain") == "none\n"
    assert backend.job_id("plain").startswith("sluice-job/dispatch-plain-")
    assert not load_spec("sluice-job")["TaskGroups"][0]["Tasks"][0]["Templates"]

    secret = "generic-s3cr3t-not-in-meta"
    backend.put_secrets({"SLUICE_TEST_SECRET": secret})  # no kind named: the generic job
    specs = [job("with-1", show), job("with-2", show, memory_bytes=256 * MIB)]
    results = {r.name: r for r in backend.wait(backend.submit(specs), timeout=120)}
    assert {r.outcome for r in results.values()} == {Outcome.SUCCEEDED}, results
    assert backend.logs("with-1") == backend.logs("with-2") == f"{secret}\n"
    assert backend.job_id("with-1").startswith("sluice-job-secrets/dispatch-with-1-")
    assert backend.job_id("with-2").startswith("sluice-job-secrets-256mib/dispatch-with-2-")
    api = NomadApi(nomad_api.settings())
    for name in ("with-1", "with-2"):
        assert secret not in json.dumps(api.client.job.get_job(backend.job_id(name)))


def test_block_settings_reach_the_backend(nomad_api):
    from sluice.blocks.nomad import NomadCluster

    block = NomadCluster(address=nomad_api.url, token=nomad_api.token, namespace="default")
    assert nomad_api.token not in repr(block)
    backend = NomadBackend(block.settings(), min_interval=0)
    backend.preflight(["sluice-job"])
    assert backend.active_count() == 0
    backend.close()


@needs_cgroups
def test_run_jobs_records_nomad_outcomes_in_the_ledger(backend, tmp_path):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    allocate = "x = bytearray(200 * 2**20)"
    planned = [
        Planned(item, job(f"alloc-{item}", allocate, memory_bytes=memory))
        for item, memory in [("small", 64 * MIB), ("big", 512 * MIB)]
    ]
    run_jobs(backend, ledger, "run-1", "alloc", planned, timeout=120)
    latest = ledger.latest("run-1")
    assert latest["small"].outcome is Outcome.OOM and latest["small"].exit_code == 137
    assert latest["big"].outcome is Outcome.SUCCEEDED
    ledger.close()


def test_concurrent_waits_each_get_their_jobs(backend):
    groups = [[f"g{g}-{i}" for i in range(5)] for g in range(3)]
    backend.submit([job(name, "pass") for group in groups for name in group])
    seen: dict[int, list[str]] = {}

    def follow(index: int) -> None:
        seen[index] = sorted(r.name for r in backend.wait(groups[index], timeout=120))

    threads = [threading.Thread(target=follow, args=(g,)) for g in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    assert seen == {g: sorted(groups[g]) for g in range(3)}


def test_a_job_that_is_not_parameterized_is_refused(backend, nomad_api):
    plain = load_spec("sluice-job")
    plain.update(ID="plain", Name="plain", ParameterizedJob=None)
    plain["TaskGroups"][0]["Tasks"][0]["Config"] = {"command": "true"}
    backend.register(plain)
    spec = job("p", "pass", template={"nomad": {"job": "plain", "meta": {}}})
    with pytest.raises(SluiceInputError, match="'plain' is not a parameterized job"):
        backend.submit([spec])


def test_a_garbage_collected_job_is_not_reported_done(backend, nomad_api):
    [first] = backend.wait(backend.submit([job("collected", "pass")]), timeout=120)
    assert first.outcome is Outcome.SUCCEEDED
    NomadApi(nomad_api.settings()).client.system.initiate_garbage_collection()
    # A resumed orchestrator cannot prove the job ran: it is lost (and will be re-run).
    [again] = NomadBackend(nomad_api.settings(), min_interval=0).wait(["collected"], timeout=60)
    assert again.outcome is Outcome.LOST
    assert again.message == "no Nomad job found"


def test_hcl_spec_is_parsed_by_the_agent_and_registered(nomad_api, tmp_path):
    (tmp_path / "stage.nomad").write_text(
        """
        job "stage" {
          type = "batch"
          parameterized {
            meta_required = ["output_path"]
          }
          group "stage" {
            task "stage" {
              driver = "raw_exec"
              config {
                command = "/bin/sh"
                args    = ["-c", "echo wrote ${NOMAD_META_output_path}"]
              }
            }
          }
        }
        """
    )
    (tmp_path / "broken.nomad").write_text('job "broken" {\n  vault {}\n}\n')
    backend = NomadBackend(nomad_api.settings(), spec_dir=tmp_path, min_interval=0)
    template = {"nomad": {"job": "stage", "meta": {"output_path": "o.tif"}}}
    [result] = backend.wait(backend.submit([job("s", "unused", template=template)]), timeout=120)
    assert result.outcome is Outcome.SUCCEEDED
    assert backend.logs("s") == "wrote o.tif\n"
    assert nomad_api.requests["POST /v1/jobs/parse"] == 1
    with pytest.raises(SluiceInputError, match="broken.nomad: Nomad cannot parse it"):
        backend.preflight(["broken"])
    backend.close()


def test_a_command_that_cannot_start_fails(backend):
    spec = JobSpec(name="missing", command=["/no/such/program"])
    [result] = backend.wait(backend.submit([spec]), timeout=120)
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 127  # the generic job's shell could not exec it
