"""raykube's reusable Pulumi components: import them into any Pulumi project."""
