"""The `gateway` command line: one module per group of subcommands, `main` the entry point.

May import every other package of the gateway; nothing imports it (it is the top layer).
"""
