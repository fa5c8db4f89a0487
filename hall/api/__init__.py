"""The HTTP and WebSocket edge: each decodes, builds a command, calls the engine."""
