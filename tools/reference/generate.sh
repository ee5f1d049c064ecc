#!/usr/bin/env bash
# Regenerate every committed test model and golden under tests/data from the pinned
# reference environment (torch, transformers, diffusers, ftfy, openai-clip).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
  "$venv/bin/pip" install -q --no-deps -r "$here/openai-clip.txt"
fi
cd "$here/../.."
"$venv/bin/python" "$here/gen_models.py"
"$venv/bin/python" "$here/gen_lora_goldens.py"
# Again: the CFG + LoRA pipeline golden needs the LoRA written just above (unchanged files stay).
"$venv/bin/python" "$here/gen_models.py"
"$venv/bin/python" "$here/gen_tokenizer_goldens.py"
"$venv/bin/python" "$here/gen_html_entities.py"
"$venv/bin/python" "$here/gen_scheduler_goldens.py"
"$venv/bin/python" "$here/gen_weight_names.py"
"$venv/bin/python" "$here/gen_semanticdraw_goldens.py"
