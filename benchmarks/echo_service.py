"""The speed floor of the serving benchmark: a bare BentoML endpoint that echoes its JSON input.

Same framework, same machine, same client as `serving.service`, no model: whatever /score costs
above this is the price of validation, featurize, the model and the explanation.
"""

from __future__ import annotations

from typing import Any

import bentoml


@bentoml.service(name="echo", workers=1, http={"host": "127.0.0.1"})
class Echo:
    @bentoml.api(route="/echo")
    def echo(self, snapshot: dict[str, Any], explain: bool = True) -> dict[str, Any]:
        return {"snapshot": snapshot, "explain": explain}
