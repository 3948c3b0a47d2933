"""TRL 1.13's config names and defaults, and a TrlParser check of our TRL-style YAMLs.

Writes trainer/trl_defaults.json: for each config class a trainer user meets (DPOConfig,
KTOConfig, BCOConfig, OnlineDPOConfig, ORPOConfig, CPOConfig, ScriptArguments, ModelConfig and
transformers' TrainingArguments), its fields with their defaults (the TRL classes list only their
own fields and the TrainingArguments defaults they change). trainer/config.ts reads it to accept
TRL keys left at TRL's default; tests/trainer/trl_names_test.ts checks the key table against it.

Then parses each tests/fixtures/trl/*.yaml with TrlParser and the config class its loss_type
belongs to, so those fixtures are YAMLs TRL itself accepts.

    /work/pyvenv/bin/python tools/dump_trl_configs.py
"""

import dataclasses
import json
import os
import pathlib
import warnings

os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
warnings.filterwarnings("ignore")

import transformers  # noqa: E402
import trl  # noqa: E402
import yaml  # noqa: E402
from transformers import TrainingArguments  # noqa: E402
from trl import DPOConfig, KTOConfig, ModelConfig, ScriptArguments, TrlParser  # noqa: E402
from trl.experimental.bco import BCOConfig  # noqa: E402
from trl.experimental.cpo import CPOConfig  # noqa: E402
from trl.experimental.online_dpo import OnlineDPOConfig  # noqa: E402
from trl.experimental.orpo import ORPOConfig  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
TRAINERS = [DPOConfig, KTOConfig, BCOConfig, OnlineDPOConfig, ORPOConfig, CPOConfig]


def default_of(field):
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        value = None
    return value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else str(value)


def fields_of(cls, base=None):
    inherited = {f.name: default_of(f) for f in dataclasses.fields(base)} if base else {}
    out = {}
    for f in dataclasses.fields(cls):
        value = default_of(f)
        if f.name not in inherited or inherited[f.name] != value:
            out[f.name] = value
    return out


classes = {"TrainingArguments": fields_of(TrainingArguments)}
for cls in TRAINERS:
    classes[cls.__name__] = fields_of(cls, TrainingArguments)
classes["ScriptArguments"] = fields_of(ScriptArguments)
classes["ModelConfig"] = fields_of(ModelConfig)
dump = {
    "generated_by": "tools/dump_trl_configs.py",
    "versions": {"trl": trl.__version__, "transformers": transformers.__version__},
    "classes": classes,
}
out = ROOT / "trainer" / "trl_defaults.json"
out.write_text(json.dumps(dump, indent=1) + "\n")
print(f"wrote {out.relative_to(ROOT)}: {sum(len(c) for c in classes.values())} fields")

# Which TRL config class a fixture's loss_type belongs to.
CONFIG_OF = {"sigmoid": DPOConfig, "kto": KTOConfig, "simpo": CPOConfig}
for path in sorted((ROOT / "tests" / "fixtures" / "trl").glob("*.yaml")):
    loss_type = yaml.safe_load(path.read_text())["loss_type"]
    loss_type = loss_type[0] if isinstance(loss_type, list) else loss_type
    config_class = CONFIG_OF[loss_type]
    parser = TrlParser((ScriptArguments, config_class, ModelConfig))
    script, config, model = parser.parse_args_and_config(args=["--config", str(path)])
    print(f"TrlParser accepts {path.relative_to(ROOT)} as {config_class.__name__} "
          f"(loss_type {config.loss_type}, beta {config.beta}, model {model.model_name_or_path})")
