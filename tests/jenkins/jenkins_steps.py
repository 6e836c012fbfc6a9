"""Read the shell steps out of jenkins/Jenkinsfile and jenkins/jobs.yaml, and run them as Jenkins
would, so tests/jenkins/test_jenkins.py checks the real commands without a Jenkins server.

The Jenkinsfile is not parsed as Groovy: its shell steps are all `sh '''...'''` or
`sh(script: '''...''', returnStatus: true)`, which is all a test needs (and a test fails if a
step is written any other way). Jenkins runs an `sh` body as `sh -xe <file>`; so do we.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JENKINS = REPO / "jenkins"

_STEP = re.compile(
    r"\bsh\s+'''(?P<plain>.*?)'''"
    r"|\bsh\(\s*script:\s*'''(?P<status>.*?)''',\s*returnStatus:\s*true\s*\)",
    re.DOTALL,
)
_STAGE = re.compile(r"\bstage\('(?P<name>[^']+)'\)")
_POST = re.compile(r"^    post \{", re.MULTILINE)
_POST_CONDITION = re.compile(
    r"^        (?P<name>always|success|unstable|failure|aborted) \{", re.MULTILINE
)
_GROOVY_ESCAPE = re.compile(r"\\(\n|.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"', "$": "$", "\n": ""}


@dataclass(frozen=True)
class Step:
    stage: str  # "Train", or "post:always" for a step of the post section
    script: str  # the shell text as the shell receives it (Groovy escapes resolved)
    returns_status: bool  # sh(returnStatus: true): the pipeline decides what the code means


def groovy_string(text: str) -> str:
    """A '''...''' literal's value: Groovy resolves backslash escapes in it, not `$`."""
    return _GROOVY_ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def jenkinsfile_steps(text: str) -> list[Step]:
    """Every shell step of the pipeline, in order, with the stage it belongs to."""
    post = _POST.search(text)
    post_at = post.start() if post else len(text)
    steps = []
    for match in _STEP.finditer(text):
        where = match.start()
        if where > post_at:
            conditions = [c for c in _POST_CONDITION.finditer(text, post_at, where)]
            stage = "post:" + (conditions[-1]["name"] if conditions else "?")
        else:
            stages = [s for s in _STAGE.finditer(text, 0, where)]
            stage = stages[-1]["name"] if stages else "?"
        body = match["plain"] if match["plain"] is not None else match["status"]
        script = textwrap.dedent(groovy_string(body)).strip("\n") + "\n"
        steps.append(Step(stage, script, match["status"] is not None))
    return steps


def groovy_code(text: str) -> str:
    """The Jenkinsfile without its shell text (the '''...''' literals) and comments."""
    groovy = re.sub(r"'''.*?'''", "''''''", text, flags=re.DOTALL)
    return re.sub(r"(^|\s)//.*", "", groovy)


def shell_steps_written_otherwise(text: str) -> list[str]:
    """`sh` calls whose script is not a triple-single-quoted literal: Groovy interpolates those."""
    groovy = groovy_code(text)
    calls = re.finditer(r"\bsh\b\s*(\(\s*(script:\s*)?)?(?P<start>.{0,3})", groovy)
    return [m.group(0) for m in calls if m["start"] != "'''"]


def archived_patterns(text: str) -> list[str]:
    """The Publish stage's archiveArtifacts patterns, joined to the dir() they are relative to."""
    match = re.search(
        r"dir\('(?P<dir>[^']+)'\)\s*\{.*?archiveArtifacts\(artifacts:\s*'(?P<patterns>[^']+)'",
        text,
        re.DOTALL,
    )
    if match is None:
        return []
    return [f"{match['dir']}/{p.strip()}" for p in match["patterns"].split(",")]


# -- the freestyle jobs, as Jenkins Job Builder renders them -----------------------------------
@dataclass(frozen=True)
class Trigger:
    project: str
    condition: str  # SUCCESS, UNSTABLE, UNSTABLE_OR_BETTER, ...
    current_parameters: bool
    predefined: dict[str, str]


@dataclass(frozen=True)
class FreestyleJob:
    name: str
    command: str
    unstable_return: int | None
    parameters: dict[str, str]  # name -> default
    triggers: list[Trigger]
    archived: list[str]

    @classmethod
    def load(cls, config: Path) -> FreestyleJob:
        root = ET.parse(config).getroot()
        shells = root.findall("./builders/hudson.tasks.Shell")
        assert len(shells) == 1, f"{config}: {len(shells)} shell steps, one expected"
        unstable = shells[0].findtext("unstableReturn")
        parameters = {
            p.findtext("name"): p.findtext("defaultValue") or ""
            for p in root.iter()
            if p.tag.endswith("ParameterDefinition") and p.findtext("name")
        }
        for choice in root.iter("hudson.model.ChoiceParameterDefinition"):
            parameters[choice.findtext("name")] = choice.find(".//string").text
        triggers = []
        for config_ in root.iter("hudson.plugins.parameterizedtrigger.BuildTriggerConfig"):
            kinds = {c.tag.rsplit(".", 1)[-1]: c for c in config_.find("configs")}
            predefined_node = kinds.get("PredefinedBuildParameters")
            properties = predefined_node.findtext("properties") if predefined_node else ""
            predefined = dict(line.split("=", 1) for line in properties.splitlines() if "=" in line)
            triggers.append(
                Trigger(
                    config_.findtext("projects"),
                    config_.findtext("condition"),
                    "CurrentBuildParameters" in kinds,
                    predefined,
                )
            )
        archived = [
            pattern.strip()
            for text in root.findall(".//hudson.tasks.ArtifactArchiver/artifacts")
            for pattern in (text.text or "").split(",")
        ]
        return cls(
            config.parent.name,
            shells[0].findtext("command"),
            int(unstable) if unstable else None,
            parameters,
            triggers,
            archived,
        )

    def result(self, exit_code: int) -> str:
        """What Jenkins makes of the shell's exit code."""
        if exit_code == 0:
            return "SUCCESS"
        return "UNSTABLE" if exit_code == self.unstable_return else "FAILURE"


_CONDITIONS = {
    "SUCCESS": {"SUCCESS"},
    "UNSTABLE": {"UNSTABLE"},
    "UNSTABLE_OR_BETTER": {"SUCCESS", "UNSTABLE"},
    "UNSTABLE_OR_WORSE": {"UNSTABLE", "FAILURE"},
    "FAILED_OR_BETTER": {"SUCCESS", "UNSTABLE", "FAILURE"},
    "FAILED": {"FAILURE"},
    "ALWAYS": {"SUCCESS", "UNSTABLE", "FAILURE"},
}


def fires(trigger: Trigger, result: str) -> bool:
    return result in _CONDITIONS[trigger.condition]


def expand(text: str, env: dict[str, str]) -> str:
    """`$VAR` / `${VAR}` as the Parameterized Trigger plugin expands predefined parameters."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text
    )


# -- running a step ------------------------------------------------------------------------------
def jenkins_env(workspace: Path, build_number: int, job: str, **params: str) -> dict[str, str]:
    """The environment Jenkins gives a step: its own variables, then the build's parameters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUTATOR_", "GIT_"))}
    url = f"http://jenkins.invalid/job/{job}/{build_number}/"
    env.update(
        WORKSPACE=str(workspace),
        JOB_NAME=job,
        BUILD_NUMBER=str(build_number),
        BUILD_ID=str(build_number),
        BUILD_URL=url,
        JENKINS_URL="http://jenkins.invalid/",
        CI="true",
        NO_COLOR="1",
    )
    env.update(params)
    return env


def run_step(script: str, cwd: Path, env: dict[str, str], timeout: float = 900):
    """The step as Jenkins runs it: `sh -xe`, in the workspace."""
    return subprocess.run(
        ["sh", "-xe", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
