"""The dashboard Ingress: sub-paths rewritten for ingress-nginx, annotations and TLS passed on."""
from __future__ import annotations

import re

from tests.helpers.program import run_program, with_cluster
from tests.helpers.upstream import validate_kubernetes


# --- the dashboard Ingress --------------------------------------------------------

def nginx_rewrite(ingress: dict, request_path: str):
    """What ingress-nginx sends upstream for a request: the rule's regex
    (anchored at the start, as nginx's location) and the rewrite target."""
    rule = ingress["spec"]["rules"][0]["http"]["paths"][0]
    target = ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/rewrite-target")
    match = re.match(rule["path"], request_path, re.IGNORECASE)
    if match is None:
        return None
    return re.sub(r"\$(\d)", lambda m: match.group(int(m.group(1))), target) if target else request_path


def test_sub_path_ingress_strips_the_prefix_for_ingress_nginx(stack_runs):
    (ingress,) = [r.inputs for r in stack_runs["aks"].of_type("kubernetes:networking.k8s.io/v1:Ingress")]
    validate_kubernetes(ingress, "1.33")
    assert ingress["spec"]["ingressClassName"] == "webapprouting.kubernetes.azure.com"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["pathType"] == "ImplementationSpecific"
    assert nginx_rewrite(ingress, "/ray/") == "/"
    assert nginx_rewrite(ingress, "/ray/api/jobs/") == "/api/jobs/"
    assert nginx_rewrite(ingress, "/ray/static/js/main.js") == "/static/js/main.js"
    assert nginx_rewrite(ingress, "/other/api/jobs/") is None


def test_ingress_takes_annotations_and_tls():
    ingress_settings = {"enabled": True, "className": "nginx", "host": "ray.example.com", "path": "/",
                        "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://auth.example.com/check"},
                        "tls": {"secretName": "ray-tls"}}
    result = run_program(with_cluster("eks", dashboardIngress=ingress_settings), "eks")
    (ingress,) = [r.inputs for r in result.of_type("kubernetes:networking.k8s.io/v1:Ingress")]
    validate_kubernetes(ingress, "1.33")
    assert ingress["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/auth-url": "https://auth.example.com/check"}
    assert ingress["spec"]["tls"] == [{"secretName": "ray-tls", "hosts": ["ray.example.com"]}]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0] | {"backend": None} == {"path": "/", "pathType": "Prefix", "backend": None}


def test_other_controllers_keep_their_own_rewrite():
    ingress_settings = {"enabled": True, "className": "traefik", "path": "/ray",
                        "annotations": {"traefik.ingress.kubernetes.io/router.middlewares": "ray-strip-prefix@kubernetescrd",
                                        "raykube-note/rewrite": "by the strip-prefix middleware"}}
    result = run_program(with_cluster("eks", dashboardIngress=ingress_settings), "eks")
    (ingress,) = [r.inputs for r in result.of_type("kubernetes:networking.k8s.io/v1:Ingress")]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/ray"
    assert "nginx.ingress.kubernetes.io/rewrite-target" not in ingress["metadata"]["annotations"]
