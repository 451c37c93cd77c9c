"""raykube: a Kubernetes cluster to a ready, autoscaling Ray cluster (`pulumi up`)."""
from raykube.program import main

main()
