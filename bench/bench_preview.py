"""How fast is `mutate preview` next to its floor: a bare Python that imports libcst and parses?

    python bench/bench_preview.py [--repeat N] [--json OUT] [--script FILE]

One run measures, side by side on the same ~300-line script (bench/make_long_script.py):
  (a) the wall time of a `mutate preview FILE` process, stdout to a pipe;
  (b) the floor: `python -c "import libcst, sys; libcst.parse_module(...)" FILE`;
  (c) in one process: `libcst.parse_module` alone against parse + locate + propose + apply,
      with each stage's own time;
  (d) what the preview process imports: no keras, tensorflow or rich, and the costliest imports.
Processes alternate (a, b, b, a, ...) so drift in the machine hits both. The goals from the issue
are printed as "goal met" / "goal missed"; a benchmark reports, it never fails on a goal.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from make_long_script import write_long_script

PREVIEW_GOAL = 1.25  # preview process / floor process, medians
PIPELINE_GOAL = 2.0  # locate + propose + apply (with the parse) / bare parse, medians
FORBIDDEN_IMPORTS = ("keras", "tensorflow", "rich")
FLOOR_CODE = "import libcst, sys; libcst.parse_module(open(sys.argv[1]).read())"


def precompile_project() -> str:
    """Write the project's bytecode, as `pip install` does for a regular (non-editable) install.

    An editable install leaves compiling to the first import, and with PYTHONDONTWRITEBYTECODE
    set (as on the machines here) that first import never writes it: every `mutate` process
    would compile all of mutator from source (~30 ms) while the floor's libcst, installed
    normally, loads its bytecode. Precompiling makes the comparison the one a user sees.
    """
    import compileall

    root = Path(__file__).resolve().parents[1]
    for package in ("mutator", "rules"):
        compileall.compile_dir(str(root / package), quiet=1)
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return f"project precompiled (PYTHONDONTWRITEBYTECODE={flag or 'unset'})"


def mutate_command() -> tuple[list[str], str]:
    """How to start `mutate` as users do, and a note on which one was found.

    The console script beside this interpreter comes first: a `mutate` on PATH may be a pyenv or
    asdf shim, a shell script that costs ~60 ms before Python even starts, which is not the CLI's
    cost and which the floor (run with sys.executable) does not pay.
    """
    beside = Path(sysconfig.get_path("scripts")) / "mutate"
    if beside.is_file():
        return [str(beside)], str(beside)
    on_path = shutil.which("mutate")
    if on_path:
        return [on_path], on_path
    code = "from mutator.cli.app import main; raise SystemExit(main())"
    return [sys.executable, "-c", code], "python -c 'from mutator.cli.app import main' (no script)"


def python_argv(command: list[str]) -> list[str]:
    """`command` run by this interpreter, so flags such as -X importtime can go in front."""
    if command[0] == sys.executable:
        return command[1:]
    with open(command[0], "rb") as script:
        if b"python" in script.readline():
            return [command[0]]
    return ["-c", "from mutator.cli.app import main; raise SystemExit(main())"]  # a shell shim


def run_process(argv: list[str], label: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{label} failed (exit {done.returncode}): {done.stderr.decode(errors='replace')}"
        )
    return elapsed


def time_processes(preview: list[str], floor: list[str], repeat: int) -> dict[str, list[float]]:
    run_process(preview, "mutate preview")  # warm the page cache and write any .pyc files
    run_process(floor, "floor")
    times: dict[str, list[float]] = {"preview": [], "floor": []}
    for i in range(repeat):
        order = [("preview", preview), ("floor", floor)]
        for name, argv in order if i % 2 == 0 else reversed(order):
            times[name].append(run_process(argv, name))
    return times


def time_call(func: Callable[[], object], repeat: int) -> list[float]:
    func()  # warm-up: first-call caches (re, libcst's grammar config) are not what we measure
    samples = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return samples


def time_in_process(text: str, repeat: int) -> dict[str, list[float]]:
    import libcst
    from libcst.metadata import MetadataWrapper, QualifiedNameProvider

    from mutator import api
    from mutator.engine.locate import collect_facts, locate
    from mutator.engine.rewrite import verify
    from mutator.engine.source import parse_script

    rules = api.rules_named(None)

    def pipeline() -> None:
        script = api.Script.from_text(text)
        api.rewrite(script, api.choose(api.propose(script, rules)))

    module = parse_script(text)
    script = api.Script.from_text(text)
    candidate = api.choose(api.propose(script, rules))
    rewritten = api.rewrite(script, candidate).source

    def qualified_names() -> None:
        MetadataWrapper(module, unsafe_skip_copy=True).resolve(QualifiedNameProvider)

    stages: dict[str, Callable[[], object]] = {
        "parse (libcst.parse_module)": lambda: libcst.parse_module(text),
        "locate+propose+apply (with parse)": pipeline,
        "  parse_script": lambda: parse_script(text),
        "  locate": lambda: locate(module),
        "    collect_facts": lambda: collect_facts(module),
        "    QualifiedNameProvider alone": qualified_names,
        "    one no-op CSTVisitor pass": lambda: module.visit(libcst.CSTVisitor()),
        "  propose (all rules)": lambda: api.propose(script, rules),
        "  rewrite (apply_candidate)": lambda: api.rewrite(script, candidate),
        "    verify (re-parse+compile)": lambda: verify(rewritten, candidate.rule),
        "    module.code": lambda: module.code,
    }
    return {name: time_call(func, repeat) for name, func in stages.items()}


# Each prints "<import seconds> <work seconds>" as its last line on stderr.
PREVIEW_PHASES = (
    "import sys, time; t0 = time.perf_counter(); import mutator.cli.app, mutator.cli.commands; "
    "t1 = time.perf_counter(); code = mutator.cli.app.main(); t2 = time.perf_counter(); "
    "print(t1 - t0, t2 - t1, file=sys.stderr); raise SystemExit(code)"
)
FLOOR_PHASES = (
    "import sys, time; t0 = time.perf_counter(); import libcst; t1 = time.perf_counter(); "
    "libcst.parse_module(open(sys.argv[1]).read()); t2 = time.perf_counter(); "
    "print(t1 - t0, t2 - t1, file=sys.stderr)"
)


def time_phases(argv: list[str], repeat: int) -> dict[str, list[float]]:
    """Wall time of a process split into its imports, its work, and the rest (start, exit)."""
    phases: dict[str, list[float]] = {"total": [], "imports": [], "work": [], "start+exit": []}
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True)
        total = time.perf_counter() - started
        imports, work = map(float, done.stderr.splitlines()[-1].split())
        for name, value in zip(phases, (total, imports, work, total - imports - work), strict=True):
            phases[name].append(value)
    return phases


def import_times(argv: list[str]) -> dict[str, tuple[int, int]]:
    """{module: (self us, cumulative us)} from `python -X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    found = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        found[name.strip()] = (int(self_us), int(cumulative_us))
    return found


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def verdict(ratio: float, goal: float) -> str:
    return f"goal <= {goal:g}x: {'goal met' if ratio <= goal else 'goal missed'}"


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "libcst": importlib.metadata.version("libcst"),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs of each measurement")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--script", type=Path, help="benchmark this script instead")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_preview_") as folder:
        script = args.script or write_long_script(Path(folder) / "train_digits.py")
        text = script.read_text(encoding="utf-8")
        compiled = precompile_project()
        mutate, mutate_found = mutate_command()
        preview = [*mutate, "preview", str(script)]
        floor = [sys.executable, "-c", FLOOR_CODE, str(script)]
        processes = time_processes(preview, floor, args.repeat)
        in_process = time_in_process(text, args.repeat)
        phases = {
            "preview": time_phases(["-c", PREVIEW_PHASES, "preview", str(script)], args.repeat),
            "floor": time_phases(["-c", FLOOR_PHASES, str(script)], args.repeat),
        }
        preview_imports = import_times([*python_argv(mutate), "preview", str(script)])
        floor_imports = import_times(["-c", FLOOR_CODE, str(script)])

    info = machine()
    lines = text.count("\n")
    print(
        f"mutate preview on a {lines}-line script, {args.repeat} repeats; Python {info['python']}, "
        f"libcst {info['libcst']}, {info['cpus']} CPUs\nmutate: {mutate_found}; {compiled}\n"
    )
    preview_median, floor_median = median(processes["preview"]), median(processes["floor"])
    process_ratio = preview_median / floor_median
    print(f"{'':42}{'median':>10}{'min':>10}")
    print(
        f"{'(a) mutate preview (process)':42}{preview_median:>9.3f}s"
        f"{min(processes['preview']):>9.3f}s"
    )
    print(
        f"{'(b) floor: python, import libcst, parse':42}{floor_median:>9.3f}s"
        f"{min(processes['floor']):>9.3f}s"
    )
    print(f"{'    (a) / (b)':42}{process_ratio:>9.2f}x   {verdict(process_ratio, PREVIEW_GOAL)}")
    print(
        f"{'    (a) - (b): what mutate adds':42}{(preview_median - floor_median) * 1e3:>8.0f}ms\n"
    )

    print(f"{'    inside each process (medians)':42}{'preview':>10}{'floor':>10}")
    for phase in phases["preview"]:
        preview_ms, floor_ms = (median(phases[p][phase]) * 1e3 for p in ("preview", "floor"))
        print(f"{'      ' + phase:42}{preview_ms:>8.0f}ms{floor_ms:>8.0f}ms")
    print()

    parse_median = median(in_process["parse (libcst.parse_module)"])
    pipeline_median = median(in_process["locate+propose+apply (with parse)"])
    pipeline_ratio = pipeline_median / parse_median
    print(f"{'(c) in one process':42}{'median':>10}{'min':>10}")
    for name, samples in in_process.items():
        print(f"{name:42}{median(samples) * 1e3:>8.1f}ms{min(samples) * 1e3:>8.1f}ms")
    print(
        f"{'    pipeline / parse':42}{pipeline_ratio:>9.2f}x   "
        f"{verdict(pipeline_ratio, PIPELINE_GOAL)}"
    )
    print(f"{'    pipeline - parse':42}{(pipeline_median - parse_median) * 1e3:>8.1f}ms\n")

    def top_package(module: str) -> str:
        return module.split(".")[0]

    forbidden = sorted(
        {top_package(m) for m in preview_imports if top_package(m) in FORBIDDEN_IMPORTS}
    )
    extra = {m: t for m, t in preview_imports.items() if m not in floor_imports}
    extra_self_ms = sum(self_us for self_us, _ in extra.values()) / 1e3
    print(
        "(d) imports of the preview process: "
        + (f"IMPORTS {', '.join(forbidden)}" if forbidden else "no " + ", ".join(FORBIDDEN_IMPORTS))
    )
    print(
        f"    {len(extra)} modules beyond the floor's, {extra_self_ms:.1f} ms of import time "
        "(-X importtime, self)"
    )
    print(f"    {'top 10 by cumulative time':38}{'cumul.':>10}{'self':>10}")
    by_cumulative = sorted(preview_imports.items(), key=lambda item: -item[1][1])[:10]
    for name, (self_us, cumulative_us) in by_cumulative:
        print(f"    {name:38}{cumulative_us / 1e3:>8.1f}ms{self_us / 1e3:>8.1f}ms")
    print(f"    {'top 10 beyond the floor, by self time':38}")
    for name, (self_us, cumulative_us) in sorted(extra.items(), key=lambda item: -item[1][0])[:10]:
        print(f"    {name:38}{cumulative_us / 1e3:>8.1f}ms{self_us / 1e3:>8.1f}ms")

    if args.json:
        results = {
            "machine": info,
            "script_lines": lines,
            "repeat": args.repeat,
            "mutate": mutate_found,
            "process_seconds": processes,
            "process_ratio": process_ratio,
            "process_phases_seconds": phases,
            "process_goal": PREVIEW_GOAL,
            "process_goal_met": process_ratio <= PREVIEW_GOAL,
            "in_process_seconds": {name.strip(): times for name, times in in_process.items()},
            "pipeline_ratio": pipeline_ratio,
            "pipeline_goal": PIPELINE_GOAL,
            "pipeline_goal_met": pipeline_ratio <= PIPELINE_GOAL,
            "forbidden_imports": forbidden,
            "extra_import_ms": extra_self_ms,
            "top_imports_cumulative_us": dict(
                (name, cumulative) for name, (_, cumulative) in by_cumulative
            ),
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
