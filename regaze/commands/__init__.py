"""Sub-commands of the `regaze` CLI. Each module defines `register(subparsers)`; the parser it adds
sets `func` to a function taking the parsed arguments. Modules import heavy dependencies lazily so that
`regaze --help` stays fast. Every argparse parser of regaze lives here, one file per command; they may
import everything in regaze, and nothing imports them but regaze/cli.py."""
