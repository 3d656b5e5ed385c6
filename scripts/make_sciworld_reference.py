"""Records what the official ScienceWorld Python package (scienceworld==1.2.3) answers along the
simulator's gold paths, one variation of every task type, for tests/sciworld.rs to compare the
Rust client against step by step. Run by hand (not in CI):

    pip install scienceworld==1.2.3
    python3 scripts/make_sciworld_reference.py            # writes tests/data/sciworld/reference.json

Each episode is recorded twice, each time in a new ScienceWorldEnv (a new JVM), with the JVM
options the Rust client uses by default (constant identity hashes, passed through
JAVA_TOOL_OPTIONS): the two recordings must agree, which shows the simulator is deterministic in
that setting. The same is done in a JVM started as the package starts it, where the script
counts the episodes on which two recordings disagree (the simulator's own nondeterminism); those
recordings are summarised, not stored.

Per step: the action, the observation, the score, the package's `done` flag, the number of moves,
and the sorted valid actions (their count and a SHA-256 of them joined by newlines; the full list
for the first state of each episode). Episodes stop when the package says done, or after
MAX_STEPS gold actions.
"""
import hashlib
import json
import os
import subprocess
import sys

MAX_STEPS = 40
VARIATION = 0
SIMPLIFICATIONS = "easy"
DETERMINISTIC = "-XX:+UnlockExperimentalVMOptions -XX:hashCode=2"
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "sciworld", "reference.json")


def digest(lines):
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def record_one(task):
    """One episode in a fresh package instance (runs in a child process: JAVA_TOOL_OPTIONS is
    read when the JVM starts)."""
    from scienceworld import ScienceWorldEnv

    env = ScienceWorldEnv("", envStepLimit=10_000)
    env.load(task, VARIATION, SIMPLIFICATIONS, generateGoldPath=True)
    gold = env.get_gold_action_sequence()
    env.load(task, VARIATION, SIMPLIFICATIONS, generateGoldPath=False)
    obs, info = env.reset()
    first = {
        "observation": obs,
        "task_description": env.get_task_description(),
        "score": info["score"],
        "valid_count": len(info["valid"]),
        "valid_sha256": digest(info["valid"]),
        "valid": info["valid"],
    }
    steps = []
    for action in gold[:MAX_STEPS]:
        obs, _, done, info = env.step(action)
        steps.append({
            "action": action,
            "observation": obs,
            "score": info["score"],
            "done": bool(done),
            "moves": info["moves"],
            "valid_count": len(info["valid"]),
            "valid_sha256": digest(info["valid"]),
        })
        if done:
            break
    env.close()
    return {"task": task, "variation": VARIATION, "gold_length": len(gold), "reset": first, "steps": steps}


def record(task, java_options):
    child_env = dict(os.environ)
    if java_options:
        child_env["JAVA_TOOL_OPTIONS"] = java_options
    else:
        child_env.pop("JAVA_TOOL_OPTIONS", None)
    out = subprocess.run([sys.executable, __file__, "--one", task], env=child_env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(record_one(sys.argv[2])))
        return
    from scienceworld import ScienceWorldEnv

    env = ScienceWorldEnv("")
    tasks = env.get_task_names()
    env.close()
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(task, options) for task in tasks for options in (DETERMINISTIC, DETERMINISTIC, "", "")]
    with ThreadPoolExecutor(max_workers=int(os.environ.get("JOBS", "2"))) as pool:
        results = list(pool.map(lambda job: record(*job), jobs))
    episodes, unstable_default, unstable_deterministic = [], [], []
    for i, task in enumerate(tasks):
        a, b, c, d = results[4 * i:4 * i + 4]
        if not same(a, b):
            unstable_deterministic.append(task)
        if not same(c, d):
            unstable_default.append(task)
        episodes.append(a)
        print(f"{task}: {len(a['steps'])} steps, final score {a['steps'][-1]['score'] if a['steps'] else None}; "
              f"deterministic JVM {'stable' if same(a, b) else 'UNSTABLE'}, default JVM {'stable' if same(c, d) else 'unstable'}",
              file=sys.stderr, flush=True)
    import scienceworld
    reference = {
        "package": f"scienceworld=={scienceworld.__version__ if hasattr(scienceworld, '__version__') else '1.2.3'}",
        "java_options": DETERMINISTIC,
        "simplifications": SIMPLIFICATIONS,
        "max_steps": MAX_STEPS,
        "unstable_with_deterministic_jvm": unstable_deterministic,
        "unstable_with_default_jvm": unstable_default,
        "episodes": episodes,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(reference, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {OUT}: {len(episodes)} episodes; unstable (deterministic JVM): {unstable_deterministic}; "
          f"unstable (default JVM): {unstable_default}", file=sys.stderr)


if __name__ == "__main__":
    main()
