"""The commands, one module per area: each registers its subcommands and calls a service."""
