"""The component package's provider: `pulumi package add <this repository>/components`
makes every public component usable from TypeScript, Go, C#, Java, Python or YAML.
The schema is inferred from the components' typed Args and documented outputs."""
import sys
from pathlib import Path

# The plugin runs from this folder; the components import each other as `components.*`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider import main  # noqa: E402

from components.catalog import public_components  # noqa: E402
from components.package_provider import PackageProvider  # noqa: E402

if __name__ == "__main__":
    # What pulumi.provider.experimental.component_provider_host does, with a provider that reports
    # a component's bad arguments as one line (components/package_provider.py). Version "0.0.0":
    # the SDK's default, without which SDK generation fails.
    main(PackageProvider(public_components(), "raykube", None, "0.0.0"), sys.argv[1:])
