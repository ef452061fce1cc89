"""One module per `edge-agent` sub-command; each defines `register(subparsers)`."""
