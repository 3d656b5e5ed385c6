"""Times the Python package's ScienceWorldEnv.step on the action lists in a JSON file, for
comparison with the Rust client (run by `cargo run --release --example sciworld_bench`).
Input: [{"simulator_name", "variation", "actions"}], rounds. Output: one JSON line."""
import json
import sys
import time

from scienceworld import ScienceWorldEnv

items = json.load(open(sys.argv[1]))
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
env = ScienceWorldEnv("", envStepLimit=10_000)
steps, seconds = 0, 0.0
for _ in range(rounds):
    for item in items:
        env.load(item["simulator_name"], item["variation"], "easy", False)
        env.reset()
        for action in item["actions"]:
            t = time.perf_counter()
            _, _, done, _ = env.step(action)
            seconds += time.perf_counter() - t
            steps += 1
            if done:
                break
env.close()
print(json.dumps({"steps": steps, "seconds": seconds}))
