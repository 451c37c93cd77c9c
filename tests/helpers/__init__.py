"""What the tests share that is not a fixture: the program under mocks, the
control-plane kit, the Ray sandbox, moto, stand-ins for the kubelet, upstream data."""
