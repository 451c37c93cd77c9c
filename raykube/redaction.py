"""The one placeholder every secret value becomes wherever raykube shows it (renders, outputs, offline config)."""

SECRET = "[secret]"
