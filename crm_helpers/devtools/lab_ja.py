"""JupyterLab's own interface in Japanese, for one lab only (`make lab-ja`).

The language is JupyterLab's `locale` setting. Rather than write it into the user's settings
(`~/.jupyter`), `make lab-ja` puts a folder of its own first on JUPYTER_CONFIG_PATH, holding
`labconfig/default_setting_overrides.json`: it changes the default for that lab, and a choice the
user made in the Settings menu still wins.

    python -m crm_helpers.devtools.lab_ja build/lab-ja/config
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: The translation plugin's setting and the locale of `jupyterlab-language-pack-ja-jp`.
JAPANESE_LAB = {"@jupyterlab/translation-extension:plugin": {"locale": "ja_JP"}}


def write_japanese_lab_config(config_dir: Path) -> Path:
    """Write the Japanese default into `config_dir` (a JUPYTER_CONFIG_PATH entry); its path."""
    path = Path(config_dir) / "labconfig" / "default_setting_overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(JAPANESE_LAB, indent=1) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m crm_helpers.devtools.lab_ja CONFIG_DIR")
    write_japanese_lab_config(Path(sys.argv[1]))
