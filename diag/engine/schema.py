"""Print the JSON Schema of rule files: ``python -m diag.engine.schema > rules/schema.json``.

Editors with a YAML language server use it for completion and checks
(``# yaml-language-server: $schema=schema.json`` at the top of a rule file).
"""

import json

from diag.engine.rules import RuleFile

if __name__ == "__main__":
    print(json.dumps(RuleFile.model_json_schema(), indent=2))
