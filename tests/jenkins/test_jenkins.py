"""The Jenkins front door: jenkins/jobs.yaml renders with Jenkins Job Builder, the Jenkinsfile
passes npm-groovy-lint, and the shell steps of both really run (as `sh -xe`, in a git workspace,
with the environment Jenkins would give) and end with the exit codes the pipeline expects.

The step-running tests train cnn_digits for real (seconds per trial) and are marked slow.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from jenkins_steps import (
    JENKINS,
    REPO,
    FreestyleJob,
    Step,
    archived_patterns,
    expand,
    fires,
    groovy_code,
    jenkins_env,
    jenkinsfile_steps,
    run_step,
    shell_steps_written_otherwise,
)

JENKINSFILE = (JENKINS / "Jenkinsfile").read_text(encoding="utf-8")
JOBS = ["mutator-1-pull", "mutator-2-detect", "mutator-3-train", "mutator-4-tune"]
JOBS += ["mutator-5-notify", "mutator-6-monitor"]
COMMANDS = {
    "mutator-1-pull": ["mutate", "inspect"],
    "mutator-2-detect": ["mutate", "detect"],
    "mutator-3-train": ["mutate", "tune"],
    "mutator-4-tune": ["mutate", "tune"],
    "mutator-5-notify": ["mutate", "notify"],
    "mutator-6-monitor": ["mutate", "monitor", "--once"],
}
RESULTS = ["best.py", "best.keras", "ledger.jsonl", "report.html", "metrics.png"]


# -- jobs.yaml ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("jjb")
    result = subprocess.run(
        [sys.executable, "-m", "jenkins_jobs", "test", "--config-xml", str(JENKINS / "jobs.yaml")]
        + ["-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def jobs(rendered) -> dict[str, FreestyleJob]:
    return {name: FreestyleJob.load(rendered / name / "config.xml") for name in JOBS}


def test_jjb_renders_the_six_jobs_and_the_build_pipeline_view(rendered, jobs):
    assert sorted(p.name for p in rendered.iterdir()) == sorted([*JOBS, "mutator-pipeline"])
    for name, job in jobs.items():
        assert shlex.split(job.command)[: len(COMMANDS[name])] == COMMANDS[name], name
    view = ET.parse(rendered / "mutator-pipeline" / "config.xml").getroot()
    assert view.tag.endswith("BuildPipelineView")
    assert view.findtext(".//firstJob") == "mutator-1-pull"


def test_each_job_runs_exactly_one_mutate_command(jobs):
    for name, job in jobs.items():
        lexer = shlex.shlex(job.command, posix=True, punctuation_chars=True)
        words = list(lexer)
        assert words[0] == "mutate" and "\n" not in job.command, name
        assert not {";", "&&", "||", "|", "&", "`"} & set(words), f"{name}: {job.command}"
        assert "$(" not in job.command, name


def test_exit_codes_decide_which_job_runs_next(jobs):
    def wiring(name):
        return {(t.project, t.condition) for t in jobs[name].triggers}

    assert wiring("mutator-1-pull") == {("mutator-2-detect", "SUCCESS")}
    assert wiring("mutator-2-detect") == {("mutator-3-train", "SUCCESS")}
    # baseline at the target: notify; below it (exit 1 = UNSTABLE): tune
    assert jobs["mutator-3-train"].unstable_return == 1
    assert wiring("mutator-3-train") == {
        ("mutator-4-tune", "UNSTABLE"),
        ("mutator-5-notify", "SUCCESS"),
    }
    assert jobs["mutator-4-tune"].unstable_return == 1
    assert wiring("mutator-4-tune") == {("mutator-5-notify", "UNSTABLE_OR_BETTER")}
    assert jobs["mutator-5-notify"].unstable_return == 8  # a failed delivery
    assert not jobs["mutator-5-notify"].triggers and not jobs["mutator-6-monitor"].triggers
    # every trigger hands the parameters on; job1 names the run after the pushed commit
    chain = [t for name in JOBS for t in jobs[name].triggers]
    assert all(t.current_parameters for t in chain)
    assert jobs["mutator-1-pull"].triggers[0].predefined == {"RUN": "${GIT_COMMIT}"}


def test_the_chain_shares_one_workspace_and_its_parameters_are_set_once(rendered, jobs):
    roots = {name: ET.parse(rendered / name / "config.xml").getroot() for name in JOBS}
    chain = JOBS[:5]
    assert len({roots[name].findtext("customWorkspace") for name in chain}) == 1
    assert len({roots[name].findtext("assignedNode") for name in chain}) == 1
    for name in chain:
        assert jobs[name].parameters["SCRIPT"] == "train.py", name
    for name in JOBS[:4]:
        assert jobs[name].parameters["TARGET"] == "0.97", name
        assert jobs[name].parameters["RUNNER"] == "docker", name
    triggers = roots["mutator-1-pull"].find("triggers")
    assert triggers.find("com.cloudbees.jenkins.GitHubPushTrigger") is not None
    assert triggers.findtext("hudson.triggers.SCMTrigger/spec") == "H/5 * * * *"
    assert roots["mutator-1-pull"].find("scm").get("class") == "hudson.plugins.git.GitSCM"
    timer = roots["mutator-6-monitor"].findtext("triggers/hudson.triggers.TimerTrigger/spec")
    assert timer == "H/5 * * * *"


# -- the Jenkinsfile ---------------------------------------------------------------------------
def test_jenkinsfile_declares_triggers_options_parameters_and_stages():
    for needle in [
        "githubPush()",
        "pollSCM('H/5 * * * *')",
        "disableConcurrentBuilds()",
        "timeout(",
        "buildDiscarder(",
        "string(name: 'SCRIPT', defaultValue: 'train.py'",
        "string(name: 'TARGET', defaultValue: '0.97'",
        "string(name: 'MAX_TRIALS', defaultValue: '10'",
        "string(name: 'FINAL_RUNS', defaultValue: '3'",
        "string(name: 'METRIC', defaultValue: ''",
        "choice(name: 'RUNNER', choices: ['docker', 'local', 'ray']",
        "string(name: 'RAY_ADDRESS', defaultValue: ''",
        "booleanParam(name: 'PUSH_BACK', defaultValue: false",
        "booleanParam(name: 'NOTIFY', defaultValue: true",
        "unstable(",
        "publishHTML(",
        "withCredentials(",
    ]:
        assert needle in JENKINSFILE, needle
    stages = [step.stage for step in jenkinsfile_steps(JENKINSFILE)]
    order = list(dict.fromkeys(stages))
    assert order == ["Checkout", "Detect", "Train", "Tune", "Publish", "Notify", "post:always"]
    for condition in ("failure", "aborted", "unstable", "always"):
        assert f"        {condition} {{" in JENKINSFILE, condition


def test_no_shell_step_lets_groovy_interpolate():
    assert shell_steps_written_otherwise(JENKINSFILE) == []
    # the check itself bites: a double-quoted step is reported
    assert shell_steps_written_otherwise('sh "echo ${env.SECRET}"') == ['sh "ec']
    groovy = groovy_code(JENKINSFILE)  # secrets are only named by the shell, never by Groovy
    for secret in ("MUTATOR_SMTP_PASSWORD", "MUTATOR_WEBHOOK_URL", "GIT_PASSWORD"):
        assert f"${secret}" not in groovy and "${" + secret not in groovy, secret
        assert f"env.{secret}" not in groovy, secret


def test_archived_files_are_the_run_results():
    patterns = archived_patterns(JENKINSFILE)
    assert [Path(p).name for p in patterns] == RESULTS


def test_jenkinsfile_passes_npm_groovy_lint(tmp_path):
    lint = JENKINS / "node_modules" / ".bin" / "npm-groovy-lint"
    if not lint.exists():
        if os.environ.get("CI"):
            pytest.fail("npm-groovy-lint is missing: run `npm ci --prefix jenkins` (.ci/run does)")
        pytest.skip("npm-groovy-lint not installed (npm ci --prefix jenkins)")
    # Both files in one folder: CodeNarc scans from their common parent (/ for far-apart files).
    shutil.copy(JENKINS / "Jenkinsfile", tmp_path / "Jenkinsfile")
    broken = tmp_path / "Broken.groovy"  # proves the linter really reads what it is given
    broken.write_text("pipeline {\n    agent any\n    stages {\n", encoding="utf-8")
    report = tmp_path / "lint.json"
    command = [str(lint), "--noserver", "--failon", "info", "--config", str(JENKINS)]
    command += ["--output", str(report), str(tmp_path / "Jenkinsfile"), str(broken)]
    # its own session, so a timeout also stops the JVM node starts (it would outlive node)
    linter = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, _ = linter.communicate(timeout=120)
    finally:
        if linter.poll() is None:
            os.killpg(linter.pid, signal.SIGKILL)
            linter.wait()
    files = json.loads(report.read_text())["files"]
    found = {Path(name).name: [e["rule"] for e in v["errors"]] for name, v in files.items()}
    assert found["Jenkinsfile"] == [], stdout
    assert "NglParseError" in found["Broken.groovy"]
    assert linter.returncode == 1  # because of Broken.groovy alone


# -- running the steps -------------------------------------------------------------------------
def steps_of(stage: str) -> list[Step]:
    return [s for s in jenkinsfile_steps(JENKINSFILE) if s.stage == stage]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def workspace(tmp_path) -> Path:
    """What `checkout scm` leaves: a clone of the developer's repository, on a detached HEAD."""
    origin = tmp_path / "origin.git"
    dev = tmp_path / "dev"
    dev.mkdir()
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    git("init", "-q", "-b", "main", cwd=dev)
    shutil.copy(REPO / "fixtures" / "cnn_digits.py", dev / "train.py")
    git("add", "train.py", cwd=dev)
    identity = ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"]
    git(*identity, "commit", "-q", "-m", "a weak CNN", cwd=dev)
    git("push", "-q", str(origin), "main", cwd=dev)
    work = tmp_path / "workspace"
    git("clone", "-q", str(origin), str(work), cwd=tmp_path)
    git("checkout", "-q", "--detach", cwd=work)
    return work


@pytest.fixture
def webhook(webhook):
    """One local webhook server per test (conftest's), standing in for Slack."""
    return webhook()


@pytest.fixture
def smtp():
    """A real SMTP server on localhost (aiosmtpd); `.messages` are the mails it accepted."""
    from aiosmtpd.controller import Controller

    class Inbox:
        messages: list[email.message.EmailMessage] = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            self.messages.append(
                email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            )
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    inbox.messages = []
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


def payloads(webhook) -> list[dict]:
    return webhook.received


def pipeline_env(workspace: Path, webhook, **params: str) -> dict[str, str]:
    defaults = dict(SCRIPT="train.py", TARGET="0.97", MAX_TRIALS="10", METRIC="", RUNNER="local")
    defaults.update(FINAL_RUNS="1")
    defaults.update(RAY_ADDRESS="")
    defaults.update(PUSH_BACK="false", PUSH_BRANCH="", NOTIFY="true", NOTIFY_EMAIL="")
    defaults.update(MUTATOR_PIP_SPEC="mutator[all]")
    env = jenkins_env(workspace, 7, "ml-project", **{**defaults, **params})
    env["MUTATOR_WEBHOOK_URL"] = webhook.url  # withCredentials
    return env


def run_stage(stage: str, workspace: Path, env: dict[str, str]) -> list[int]:
    codes = []
    for step in steps_of(stage):
        result = run_step(step.script, workspace, env)
        codes.append(result.returncode)
        print(f"--- {stage} (exit {result.returncode})\n{result.stdout}{result.stderr}")
    return codes


def test_git_credentials_reach_git_through_the_helper_and_never_the_log(workspace, webhook):
    env = pipeline_env(workspace, webhook)
    assert run_stage("Checkout", workspace, env) == [0]
    push = next(s for s in steps_of("Publish") if "mutate commit" in s.script)
    probe = push.script.replace(
        push.script.splitlines()[-1],
        "printf 'protocol=https\\nhost=git.example\\n\\n' | git credential fill",
    )
    env.update(GIT_USERNAME="jenkins-bot", GIT_PASSWORD="s3cr3t-t0ken")
    result = run_step(probe, workspace, env)
    assert result.returncode == 0, result.stderr
    assert "username=jenkins-bot" in result.stdout and "password=s3cr3t-t0ken" in result.stdout
    assert "s3cr3t-t0ken" not in result.stderr  # sh -x shows the helper unexpanded


def test_a_script_that_is_not_ml_fails_before_any_training(workspace, webhook, jobs):
    shutil.copy(REPO / "fixtures" / "not_ml.py", workspace / "train.py")
    env = pipeline_env(workspace, webhook)
    assert run_stage("Checkout", workspace, env) == [0]
    assert run_stage("Detect", workspace, env) == [4]  # a plain sh step: the build FAILS here

    def no_extra_env(name: str) -> dict[str, str]:
        return {"GIT_COMMIT": "0" * 40}

    ran = run_chain(jobs, workspace, {"RUNNER": "local"}, no_extra_env)
    assert ran == [("mutator-1-pull", "FAILURE")]  # `mutate inspect`: no model, exit 4
    assert not (workspace / ".mutator" / ("0" * 40)).exists()


def closed_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_runner_ray_hands_the_address_to_mutate_in_the_pipeline_and_the_jobs(
    workspace, webhook, jobs
):
    pytest.importorskip("ray")
    address = closed_address()  # nobody listens: mutate must say so, exit 7, train nothing
    env = pipeline_env(workspace, webhook, RUNNER="ray", RAY_ADDRESS=address)
    assert run_stage("Checkout", workspace, env) == [0]
    [train] = steps_of("Train")
    result = run_step(train.script, workspace, env)
    assert result.returncode == 7, result.stdout + result.stderr
    assert f"cannot reach the Ray cluster at {address}" in result.stderr

    job = jobs["mutator-3-train"]
    assert job.parameters["RAY_ADDRESS"] == "" and "RUNNER" in job.parameters
    values = {**job.parameters, "RUNNER": "ray", "RAY_ADDRESS": address, "RUN": "manual"}
    outcome = run_step(job.command, workspace, jenkins_env(workspace, 1, job.name, **values))
    assert job.result(outcome.returncode) == "FAILURE"
    assert f"cannot reach the Ray cluster at {address}" in outcome.stderr


@pytest.mark.slow
def test_mutate_is_installed_into_a_workspace_venv_when_not_on_path(workspace, webhook, tmp_path):
    wheel = fake_mutator_wheel(tmp_path / "wheels")
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    (bare_path / "python3").symlink_to(sys.executable)
    env = pipeline_env(workspace, webhook, MUTATOR_PIP_SPEC=str(wheel))
    env.update(
        PATH=f"{bare_path}:/usr/bin:/bin", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1"
    )
    assert shutil.which("mutate", path=env["PATH"]) is None
    assert run_stage("Checkout", workspace, env) == [0]
    assert (workspace / ".mutator/_ci/venv/bin/mutate").exists()
    result = run_step(". .mutator/_ci/env.sh\nmutate --version\n", workspace, env)
    assert result.stdout.strip() == "mutate 0.0.0-fake"
    env.pop("MUTATOR_PIP_SPEC")
    assert run_stage("Checkout", workspace, env) == [2]  # nothing to install from: one clear line


def fake_mutator_wheel(folder: Path) -> Path:
    """A wheel whose `mutate` prints a version: pip installs it offline, in a second."""
    folder.mkdir()
    wheel = folder / "mutator-0.0.0-py3-none-any.whl"
    info = "mutator-0.0.0.dist-info"
    files = {
        "fake_mutate.py": "def main():\n    print('mutate 0.0.0-fake')\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: mutator\nVersion: 0.0.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[console_scripts]\nmutate = fake_mutate:main\n",
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{n},,\n" for n in [*files, f"{info}/RECORD"]))
    return wheel


# -- the pipeline's steps, for real (they train) ------------------------------------------------
def ledger_of(workspace: Path) -> list[dict]:
    (run,) = [p for p in (workspace / ".mutator").glob("train-*") if p.is_dir()]
    return [json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines()]


def trials_of(workspace: Path) -> list[dict]:
    """The search's trials, without the runs that measure the best (a from-scratch confirm, a
    noise run, a final run, a recheck of a tried change): the budget does not count them."""
    return [r for r in ledger_of(workspace) if counted(r)]


def counted(record: dict) -> bool:
    measured = record["decision"] in ("confirm", "noise", "final")
    return not measured and not (record.get("noise") or {}).get("rechecked")


def assert_archived(workspace: Path, patterns: list[str]) -> None:
    for pattern in patterns:
        assert list(workspace.glob(pattern)), f"archiveArtifacts would miss {pattern}"


@pytest.mark.slow
def test_pipeline_at_the_target_skips_tune_publishes_and_notifies(workspace, webhook, smtp):
    env = pipeline_env(workspace, webhook, TARGET="0.1", MAX_TRIALS="3")
    # the relay as an admin sets it for every job; the password would come from a credential
    env.update(MUTATOR_SMTP_HOST="127.0.0.1", MUTATOR_SMTP_PORT=str(smtp.port))
    env.update(MUTATOR_SMTP_SECURITY="none", MUTATOR_SMTP_PASSWORD="unused-without-a-user")
    assert run_stage("Checkout", workspace, env) == [0]
    assert run_stage("Detect", workspace, env) == [0]
    assert run_stage("Train", workspace, env) == [0]  # TARGET_REACHED: the Tune stage is skipped
    publish, _push = steps_of("Publish")  # PUSH_BACK is false: only the copy step runs
    assert run_step(publish.script, workspace, env).returncode == 0
    assert_archived(workspace, archived_patterns(JENKINSFILE))
    assert run_stage("Notify", workspace, env) == [0]
    (payload,) = payloads(webhook)
    assert payload["mutator"]["outcome"] == "reached"
    assert (
        payload["mutator"]["report"]
        == "http://jenkins.invalid/job/ml-project/7/artifact/report.html"
    )
    (mail,) = smtp.messages  # to the author of the pushed commit: NOTIFY_EMAIL is empty
    assert mail["To"] == "dev@example.com" and "train.py" in mail["Subject"]
    assert run_stage("post:always", workspace, env) == [0]
    assert [r["decision"] for r in ledger_of(workspace)] == ["baseline"]


@pytest.mark.slow
def test_pipeline_below_the_target_is_unstable_pushes_back_and_resumes(workspace, webhook):
    env = pipeline_env(workspace, webhook, TARGET="0.999", MAX_TRIALS="2", PUSH_BACK="true")
    assert run_stage("Checkout", workspace, env) == [0]
    assert run_stage("Detect", workspace, env) == [0]
    assert run_stage("Train", workspace, env) == [1]  # below the target: on to Tune
    assert run_stage("Tune", workspace, env) == [1]  # budget spent below it: unstable()
    assert len(trials_of(workspace)) == 2  # the budget; a from-scratch confirm may follow
    publish, push = steps_of("Publish")
    assert run_step(publish.script, workspace, env).returncode == 0
    assert_archived(workspace, archived_patterns(JENKINSFILE))
    env.update(GIT_USERNAME="jenkins-bot", GIT_PASSWORD="unused-for-a-local-remote")
    pushed = run_step(push.script, workspace, env)
    assert pushed.returncode == 0, pushed.stderr
    best = (workspace / ".mutator/_ci/results/best.py").read_text()
    origin = workspace.parent / "origin.git"
    assert git("show", "mutator/train:train.py", cwd=origin) == best.strip()
    assert git("show", "main:train.py", cwd=origin) != best.strip()  # the built branch is untouched
    assert run_stage("Notify", workspace, env) == [0]  # no relay set: the webhook alone
    (payload,) = payloads(webhook)
    assert payload["mutator"]["outcome"] == "not_reached"
    assert payload["mutator"]["after"] > payload["mutator"]["before"]
    assert payload["mutator"]["spread"].startswith("best.py reaches ")  # FINAL_RUNS=1
    assert run_stage("post:always", workspace, env) == [0]
    # the next build of the same script resumes the finished run: nothing is trained again
    assert run_stage("Checkout", workspace, env) == [0]
    assert run_stage("Train", workspace, env) == [1]
    assert len(trials_of(workspace)) == 2


# -- the freestyle chain, job after job as the triggers decide ----------------------------------
def run_chain(jobs, workspace: Path, params: dict[str, str], extra_env) -> list[tuple[str, str]]:
    """Build job1 with `params`, then whatever its triggers start; [(job, result), ...]."""
    queue, ran = [("mutator-1-pull", params)], []
    while queue:
        name, given = queue.pop(0)
        job = jobs[name]
        # Jenkins drops the parameters a job does not define
        values = {**job.parameters, **{k: v for k, v in given.items() if k in job.parameters}}
        env = jenkins_env(workspace, len(ran) + 1, name, **values)
        env.update(extra_env(name))
        outcome = run_step(job.command, workspace, env)
        print(f"--- {name} (exit {outcome.returncode})\n{outcome.stdout}{outcome.stderr}")
        result = job.result(outcome.returncode)
        ran.append((name, result))
        if name != "mutator-1-pull":
            assert_archived(workspace, [expand(p, env) for p in job.archived])
        for trigger in job.triggers:
            if fires(trigger, result):
                passed = dict(values) if trigger.current_parameters else {}
                passed.update({k: expand(v, env) for k, v in trigger.predefined.items()})
                queue.append((trigger.project, passed))
    return ran


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "0.1",
            [("1-pull", "SUCCESS"), ("2-detect", "SUCCESS"), ("3-train", "SUCCESS")]
            + [("5-notify", "SUCCESS")],
        ),
        (
            "0.999",
            [("1-pull", "SUCCESS"), ("2-detect", "SUCCESS"), ("3-train", "UNSTABLE")]
            + [("4-tune", "UNSTABLE"), ("5-notify", "SUCCESS")],
        ),
    ],
    ids=["at-the-target", "below-the-target"],
)
def test_freestyle_chain_follows_the_exit_codes(jobs, workspace, webhook, target, expected):
    commit = git("rev-parse", "HEAD", cwd=workspace)

    def extra_env(name: str) -> dict[str, str]:
        if name == "mutator-1-pull":
            return {"GIT_COMMIT": commit}  # what the git plugin sets
        if name == "mutator-5-notify":  # what credentials-binding sets
            return {"MUTATOR_WEBHOOK_URL": webhook.url}
        return {}

    params = {"TARGET": target, "MAX_TRIALS": "2", "RUNNER": "local"}
    ran = run_chain(jobs, workspace, params, extra_env)
    assert [(name.removeprefix("mutator-"), result) for name, result in ran] == expected
    run = workspace / ".mutator" / commit
    lines = (run / "ledger.jsonl").read_text().splitlines()
    trials = [record for line in lines if counted(record := json.loads(line))]
    assert len(trials) == (1 if target == "0.1" else 2)
    (payload,) = payloads(webhook)
    assert payload["mutator"]["outcome"] == ("reached" if target == "0.1" else "not_reached")
    # the report link is the archived report of the job that tuned last
    last = "mutator-3-train/3" if target == "0.1" else "mutator-4-tune/4"
    assert payload["mutator"]["report"] == (
        f"http://jenkins.invalid/job/{last}/artifact/.mutator/{commit}/report.html"
    )
