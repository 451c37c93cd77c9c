"""Every public component of the library, found by walking the package: a new component is covered everywhere automatically."""
import importlib
import inspect
import pkgutil

import pulumi

PACKAGE = "components"


def public_components() -> list[type]:
    """The ComponentResource classes defined in components/*.py, sorted by name."""
    package = importlib.import_module(PACKAGE)
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name == "catalog":
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, pulumi.ComponentResource)
                and value.__module__ == module.__name__
                and not value.__name__.startswith("_")
            ):
                found.append(value)
    return sorted(found, key=lambda component: component.__name__)
