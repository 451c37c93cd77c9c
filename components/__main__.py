"""The component package's provider: `pulumi package add <this repository>/components`
makes every public component usable from TypeScript, Go, C#, Java, Python or YAML.
The schema is inferred from the components' typed Args and documented outputs."""
import sys
from pathlib import Path

# The plugin runs from this folder; the components import each other as `components.*`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider.experimental import component_provider_host  # noqa: E402

from components.catalog import public_components  # noqa: E402

if __name__ == "__main__":
    component_provider_host(components=public_components(), name="raykube")
