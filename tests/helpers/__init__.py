"""What the tests share that is not a fixture: the program under mocks, the
control plane (built by tools/build-go), the Ray sandbox, moto, stand-ins for the kubelet, upstream data."""
