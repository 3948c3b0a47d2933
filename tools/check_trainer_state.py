"""HF's TrainerState schema for tests/trainer/hf_state_test.ts, and a check that
`transformers.TrainerState.load_from_json` reads a run's trainer_state.json.

    /work/v22/bin/python tools/check_trainer_state.py                 # writes the fixture
    /work/v22/bin/python tools/check_trainer_state.py out/run/checkpoint-60/trainer_state.json

Writes tests/fixtures/trl/trainer_state_fields.json: the field names of transformers 5.17's
TrainerState dataclass (load_from_json is `cls(**json.loads(text))`: a file whose keys are exactly
these fields loads; an unknown key raises TypeError). With a path, loads that file and prints its
global_step and the number of log_history entries; exits 1 when it does not load.
"""

import dataclasses
import json
import pathlib
import sys

import transformers
from transformers import TrainerState

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(argv):
    if len(argv) > 1:
        try:
            state = TrainerState.load_from_json(argv[1])
        except Exception as error:  # noqa: BLE001 - any failure is the answer
            print(f"FAIL {argv[1]}: {error}")
            return 1
        print(f"ok   {argv[1]}: global_step {state.global_step}, {len(state.log_history)} log_history entries")
        return 0
    fields = [f.name for f in dataclasses.fields(TrainerState)]
    out = ROOT / "tests" / "fixtures" / "trl" / "trainer_state_fields.json"
    out.write_text(json.dumps({"transformers": transformers.__version__, "fields": fields}, indent=2) + "\n")
    print(f"wrote {out}: {len(fields)} fields")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
