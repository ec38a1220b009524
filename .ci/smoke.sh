#!/usr/bin/env bash
# What a user who installed the wheel does, from a folder that is not the checkout (run by .ci/run).
set -euo pipefail
python - <<'PY'
import omnigenome, sys
assert "site-packages" in omnigenome.__file__, omnigenome.__file__  # the installed package, not a checkout
print("omnigenome", omnigenome.__version__, "from", omnigenome.__file__)
PY
omnigenome --help >/dev/null
omnigenome fold GGGGAAACCCCAUAUGGGAAACCCAU --engine vienna
omnigenome design --structure "((((....))))...((((....))))" --budget-seconds 5 trajectories=1
# prep with a config of conf/prep/ and key=value overrides, from the installed configs
python - <<'PY'
import random
rng = random.Random(0)
with open("in.fa", "w") as f:
    for i in range(40):
        f.write(f">r{i}\n" + "".join(rng.choice("ACGU") for _ in range(rng.randint(60, 120))) + "\n")
PY
omnigenome prep in.fa --out corpus --config slurm executor.name=none near_dup.enabled=false records_per_shard=20 \
    fold.workers=1 progress=false
test -f corpus/manifest.json
# every benchmark task config by name
python -c "
from omnigenome.data.benchmarks import task_config, task_names
names = task_names(); assert len(names) == 74, len(names)
for n in names: task_config(n)
print(len(names), 'task configs')"
# a missing extra: one line that names it
if omnigenome-train logger=wandb trainer.max_steps=1 2> err.txt; then echo "logger=wandb ran without wandb"; exit 1; fi
grep -q 'pip install "omnigenome-lab\[wandb\]"' err.txt && test "$(wc -l < err.txt)" -eq 1
# a few steps of the tiny model, then the same checkpoint scored
omnigenome-train trainer.max_steps=3 trainer.val_check_interval=3 data.sample.num_records=200 \
    callbacks.progress_bar.refresh_rate=0 paths.log_dir=logs
ckpt=$(ls logs/pretrain/runs/*/checkpoints/last.ckpt)
omnigenome-evaluate ckpt="$ckpt" data.sample.num_records=200 paths.log_dir=logs
# use the model: embed, score, a few fine-tuning steps, then predict with the fine-tuned checkpoint
omnigenome embed "$ckpt" in.fa --out emb.npy --no-progress
printf '>trna\nGCGGAUUUAGCUCAGUUGG\n' | omnigenome score "$ckpt" - --mutations G1A,C2U:G3A --out effects.csv --no-progress
test "$(wc -l < effects.csv)" -eq 3
omnigenome-train experiment=finetune task=gue/prom_300_tata init_from="$ckpt" trainer.max_steps=2 \
    trainer.val_check_interval=2 data.train_limit=64 data.eval_limit=32 callbacks.progress_bar.refresh_rate=0 \
    paths.log_dir=logs3
best=$(ls logs3/finetune/gue/prom_300_tata/runs/*/checkpoints/best.ckpt)
omnigenome predict "$best" in.fa --out pred.jsonl --no-progress
test "$(wc -l < pred.jsonl)" -eq 40
python - "$ckpt" <<'PY'
import sys
import omnigenome
m = omnigenome.load(sys.argv[1])
x = m.embed(["GGGGAAACCCC", "ACGUACGU"])
effects = m.score("GCGGAUUUAGCUCAGUUGG", mutations=["G1A"])
contacts = m.contacts("GCGGAUUUAGCUCAGUUGG")
assert x.shape[0] == 2 and contacts.shape == (19, 19), (x.shape, contacts.shape)
print("inference API ok")
PY
# a user's own config folder (Hydra's search path): a model size of their own
mkdir -p myconf/model
cat > myconf/model/mini.yaml <<'YAML'
_target_: omnigenome.OmniGenomeModel
hidden_size: 64
num_layers: 2
num_heads: 4
ffn_size: 128
YAML
omnigenome-train --config-dir myconf model=mini trainer.max_steps=2 trainer.val_check_interval=2 \
    data.sample.num_records=200 callbacks.progress_bar.refresh_rate=0 paths.log_dir=logs2 | grep -q "run directory"
# the README's Python API
python - <<'PY'
from omnigenome import OmniGenomeModel, OmniGenomeTokenizer
model = OmniGenomeModel(hidden_size=32, num_layers=2, num_heads=2, ffn_size=64).eval()
tok = OmniGenomeTokenizer()
batch = tok(["GGGAAACUCCC"], ["(((.....)))"])
out = model(**batch)
assert out.mlm_logits.shape == (1, 25, 24) and out.structure_logits.shape == (1, 25, 3)
model.save_pretrained("my-model")
again = OmniGenomeModel.from_pretrained("my-model")
print("API ok")
PY
echo "smoke: all ok"
